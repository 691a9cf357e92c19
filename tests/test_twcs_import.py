import json

import pytest

from connectors.twcs import InputFileError, import_twcs

HEADER = ",tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
ROWS = (
    '0,1,AcmeCare,False,Tue Oct 31 22:10:47 +0000 2017,"@115712 Sorry,\nplease DM us. ^JK",2,3.0\n'
    '1,3,115712,True,Tue Oct 31 22:08:27 +0000 2017,@AcmeCare my order is late?,"1,4",\n'
    '2,2,115712,True,2017-10-31T22:11:45+00:00,@AcmeCare thanks,,1.0\n'
)


def write(tmp_path, text, name="twcs.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def posts(store):
    return store.df("select post_id, author, is_org_author, created_at, in_reply_to from posts order by post_id")


def test_quirks_index_column_float_ids_multiline_text_and_id_lists(store, tmp_path):
    run_id, counts = import_twcs(store, write(tmp_path, HEADER + ROWS))
    assert (counts.read, counts.loaded, counts.rejected) == (3, 3, 0)
    frame = posts(store)
    assert list(frame.post_id) == ["1", "2", "3"]
    assert list(frame.in_reply_to.fillna("")) == ["3", "1", ""]
    assert list(frame.is_org_author) == [True, False, False]
    assert str(frame.created_at[1]) == "2017-10-31 22:11:45"  # ISO timestamp accepted
    text = store.con.execute("select text, signature(text) from posts where post_id = '1'").fetchone()
    assert text == (f"@{store.pseudonym('115712')} Sorry,\nplease DM us. ^JK", "JK")
    status = store.con.execute("select status, rows_loaded from ingest_runs where run_id = ?", [run_id]).fetchone()
    assert status == ("ok", 3)


def test_bad_rows_are_rejected_with_line_and_field_and_the_rest_loads(store, tmp_path):
    text = HEADER + ROWS + (
        '3,5,115713,True,not a date,@AcmeCare hi,,\n'          # line 6: bad timestamp
        '4,x9,115713,True,Tue Oct 31 22:10:47 +0000 2017,hi,,\n'  # line 7: bad id
        '5,6,115713,maybe,Tue Oct 31 22:10:47 +0000 2017,hi,,\n'  # line 8: bad inbound
        'I just love it,3398,\n'                                 # line 9: junk row (too few fields)
        '6,7,115714,True,Tue Oct 31 22:10:47 +0000 2017,"ok",8\n'  # line 10: short but only optional missing
    )
    _, counts = import_twcs(store, write(tmp_path, text))
    assert (counts.read, counts.loaded, counts.rejected) == (8, 4, 4)
    rejected = store.con.execute("select line, field, reason from rejected_rows order by line").fetchall()
    assert [(line, field) for line, field, _ in rejected] == [
        (6, "created_at"), (7, "tweet_id"), (8, "inbound"), (9, None)]
    assert "unrecognised timestamp: not a date" in rejected[0][2]
    assert rejected[3][2] == "expected 8 fields, found 3"
    assert store.con.execute("select count(*) from posts where post_id = '7'").fetchone() == (1,)


def test_reimport_changes_no_counts(store, tmp_path):
    path = write(tmp_path, HEADER + ROWS)
    import_twcs(store, path)
    before = (store.count("posts"), store.count("accounts"))
    import_twcs(store, path)
    assert (store.count("posts"), store.count("accounts")) == before


def test_missing_required_columns_store_nothing(store, tmp_path):
    import_twcs(store, write(tmp_path, HEADER + ROWS, "good.csv"))
    bad = write(tmp_path, "tweet_id,text\n1,hello\n", "bad.csv")
    with pytest.raises(InputFileError, match=r"bad.csv:1: missing required column\(s\): author_id, inbound, created_at"):
        import_twcs(store, bad)
    assert store.count("posts") == 3
    assert store.con.execute("select status from ingest_runs order by run_id").fetchall() == [("ok",), ("failed",)]


def test_wrong_encoding_fails_cleanly_and_keeps_stored_data(store, tmp_path):
    import_twcs(store, write(tmp_path, HEADER + ROWS, "good.csv"))
    latin = HEADER + ROWS.replace("thanks", "caf\u00e9 ol\u00e9") + "3,9,115713,True,2017-10-31T22:11:45Z,x,,\n"
    with pytest.raises(InputFileError, match=r"latin.csv:\d+: not valid UTF-8"):
        import_twcs(store, write(tmp_path, latin, "latin.csv", encoding="latin-1"))
    assert store.count("posts") == 3
    assert store.con.execute("select count(*) from rejected_rows").fetchone() == (0,)


def test_excel_utf8_with_a_byte_order_mark_loads(store, tmp_path):
    excel = "\ufefftweet_id,author_id,inbound,created_at,text\r\n" \
            "1,AcmeCare,False,2017-10-31T22:10:47Z,@115712 Sorry\r\n" \
            "2,115712,True,2017-10-31T22:08:27Z,@AcmeCare late\r\n"
    _, counts = import_twcs(store, write(tmp_path, excel))
    assert (counts.loaded, counts.rejected) == (2, 0)
    assert list(posts(store).post_id) == ["1", "2"]


def test_a_latin1_file_says_how_to_convert_it_and_loads_with_its_encoding(store, tmp_path):
    latin = HEADER + ROWS.replace("thanks", "caf\u00e9 ol\u00e9")
    path = write(tmp_path, latin, "latin.csv", encoding="latin-1")
    with pytest.raises(InputFileError, match=r"latin.csv:5: not valid UTF-8 .*iconv -f cp1252 -t utf-8.*"
                                             r"--encoding cp1252"):
        import_twcs(store, path)
    _, counts = import_twcs(store, path, encoding="latin-1")
    assert (counts.loaded, counts.rejected) == (3, 0)
    assert store.con.execute("select dropped_text_is_question from posts where post_id = '2'").fetchone() == (
        False,)


def test_a_semicolon_separated_file_is_read_as_such(store, tmp_path):
    semicolon = "tweet_id;author_id;inbound;created_at;text;in_response_to_tweet_id\n" \
                "1;AcmeCare;False;2017-10-31T22:10:47Z;@115712 Sorry, please DM us;2\n" \
                "2;115712;True;2017-10-31T22:08:27Z;@AcmeCare late;\n" \
                "3;115712;True\n"
    _, counts = import_twcs(store, write(tmp_path, semicolon, "excel.csv"))
    assert (counts.loaded, counts.rejected) == (2, 1)
    assert list(posts(store).in_reply_to.fillna("")) == ["2", ""]
    assert store.con.execute("select line, reason, raw_excerpt from rejected_rows").fetchone() == (
        4, "expected 6 fields, found 3", "3;115712;True")


def test_truncated_file_rejects_the_cut_record(store, tmp_path):
    truncated = HEADER + ROWS + '3,9,115713,True,Tue Oct 31 22:10:47 +0000 2017,"@AcmeCare half a twe'
    _, counts = import_twcs(store, write(tmp_path, truncated))
    assert (counts.loaded, counts.rejected) == (3, 1)
    line, reason = store.con.execute("select line, reason from rejected_rows").fetchone()
    assert line == 6 and "truncated" in reason


def test_jsonl_with_bad_lines(store, tmp_path):
    lines = [
        {"tweet_id": 1, "author_id": "AcmeCare", "inbound": False, "created_at": "2017-10-31T22:10:47Z",
         "text": "@1 hi", "in_response_to_tweet_id": 2},
        {"tweet_id": 2, "author_id": "1", "inbound": True, "created_at": "Tue Oct 31 22:00:00 +0000 2017",
         "text": "@AcmeCare help?"},
    ]
    body = "\n".join(json.dumps(x) for x in lines) + "\n{not json\n[1,2]\n\n" + json.dumps({"tweet_id": 3}) + "\n"
    _, counts = import_twcs(store, write(tmp_path, body, "t.jsonl"))
    assert (counts.read, counts.loaded, counts.rejected) == (5, 2, 3)
    reasons = store.con.execute("select line, reason from rejected_rows order by line").fetchall()
    assert [r[0] for r in reasons] == [3, 4, 6]
    assert "malformed JSON" in reasons[0][1] and "expected a JSON object" in reasons[1][1]
    assert "missing" in reasons[2][1]


def test_empty_and_unreadable_files(store, tmp_path):
    with pytest.raises(InputFileError, match="file is empty"):
        import_twcs(store, write(tmp_path, ""))
    with pytest.raises(InputFileError, match="cannot open"):
        import_twcs(store, tmp_path / "absent.csv")


def test_real_prefix_file_junk_row_is_rejected_with_its_line(store, twcs_prefix):
    _, counts = import_twcs(store, twcs_prefix)
    assert (counts.read, counts.loaded, counts.rejected) == (5001, 5000, 1)
    line, field, reason, raw = store.con.execute(
        "select line, field, reason, raw_excerpt from rejected_rows").fetchone()
    assert line == 2591 and field is None and reason == "expected 8 fields, found 3"
    assert raw.startswith("I just love the start of email") and ",3398," in raw
    # the record cut short by the stray line break keeps its fields (as pandas reads it)
    assert store.con.execute("select author from posts where post_id = '3399'").fetchone() == (
        store.pseudonym("116510"),)
    org_accounts = store.con.execute("select count(*) from accounts").fetchone()[0]
    assert org_accounts == 76


def test_import_twcs_command_takes_the_file_encoding(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    path = write(tmp_path, HEADER + ROWS.replace("thanks", "merci \u00e7a marche"), "fr.csv",
                 encoding="cp1252")
    db = str(tmp_path / "cli.duckdb")
    refused = CliRunner().invoke(app, ["import", "twcs", str(path), "--db", db])
    assert refused.exit_code == 1 and "--encoding cp1252" in refused.output
    loaded = CliRunner().invoke(app, ["import", "twcs", str(path), "--db", db, "--encoding", "cp1252"])
    assert loaded.exit_code == 0, loaded.output
    assert "read 3, loaded 3, rejected 0" in loaded.output


# Empty lines between records (skipped, but counted), an empty line inside a quoted field, \r\n and
# lone \r line ends: the bad records after them are reported at the physical line a text editor shows.
LINE_COUNTING = (
    "tweet_id,author_id,inbound,created_at,text\r\n"               # 1
    "1,AcmeCare,False,2017-10-31T22:10:47Z,\"two\r\n\r\nparagraphs\"\r\n"  # 2-4
    "\r\n"                                                         # 5 empty
    "2,115712,maybe,2017-10-31T22:10:47Z,hi\r\n"                   # 6 bad inbound
    "3,115712,True,2017-10-31T22:10:47Z,cut\r\r"                   # 7, 8 empty
    "x9,115712,True,2017-10-31T22:10:47Z,hi\n"                     # 9 bad id
    "\n\n"                                                         # 10, 11 empty
    "4,115712,True,2017-10-31T22:10:47Z,\"a\n\nb\n\",x\n"          # 12-15 too many fields
    "5,115712,True,2017-10-31T22:10:47Z,\"\"\"quoted\"\"\"\n"        # 16
    "6,115712,True,nope,hi\n"                                      # 17 bad time
)


@pytest.mark.parametrize("batch_rows", [100_000, 1, 2])
def test_lines_count_empty_lines_and_breaks_inside_quotes(store, tmp_path, monkeypatch, batch_rows):
    import connectors.twcs as twcs

    monkeypatch.setattr(twcs, "BATCH_ROWS", batch_rows)
    _, counts = import_twcs(store, write(tmp_path, LINE_COUNTING))
    assert (counts.read, counts.loaded, counts.rejected) == (7, 3, 4)
    rejected = store.con.execute("select line, field, reason from rejected_rows order by line").fetchall()
    assert rejected == [
        (6, "inbound", "expected True/False, found maybe"),
        (9, "tweet_id", "not an integer id: x9"),
        (12, None, "expected 5 fields, found 6"),
        (17, "created_at", "unrecognised timestamp: nope"),
    ]
    assert store.con.execute("select text from posts where post_id = '1'").fetchone() == ("two\r\n\r\nparagraphs",)


def test_empty_lines_are_found_across_chunk_boundaries(tmp_path):
    from connectors.files import empty_lines, text_from_line

    path = write(tmp_path, "a\r\n\r\nb\r\rc\n\n\nd\r\n", "lines.txt")
    assert list(empty_lines(path)) == [2, 4, 6, 7]
    for chunk_bytes in (1, 2, 3, 5):
        assert list(empty_lines(path, chunk_bytes=chunk_bytes)) == [2, 4, 6, 7]
        assert text_from_line(path, 5, chunk_bytes=chunk_bytes) == b"c\n\n\nd\r\n"
    assert text_from_line(path, 1) == path.read_bytes()
