import re
from pathlib import Path

import pytest

from pipeline.config import ConfigError, apply_config, load_config

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text, name="orgs.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = '''
[[org]]
id = "acme"
name = "Acme"
sector = "retail"
timezone = "Europe/London"
business_hours = "08:30-18:00"
accounts = [
  { platform = "x", handle = "@AcmeCare", role = "support" },
  { platform = "twitter", handle = "AcmeJobs", role = "hr" },
]
'''


def test_example_config_groups_real_twcs_brands():
    config = load_config(REPO / "data" / "orgs.example.toml")
    microsoft = config.org("microsoft")
    assert {a.handle for a in microsoft.accounts} == {"MicrosoftHelps", "AzureSupport", "XboxSupport"}
    assert microsoft.sector == "tech"
    sectors = {o.sector for o in config.organisations}
    assert {"airlines", "telecom", "retail", "tech"} <= sectors
    assert sum(len(o.accounts) for o in config.organisations) == 76


def test_good_config_normalises_aliases(tmp_path):
    org = load_config(write(tmp_path, GOOD)).org("acme")
    assert [(a.platform, a.handle, a.role) for a in org.accounts] == [
        ("twitter", "AcmeCare", "support"), ("twitter", "AcmeJobs", "careers")]
    assert (org.business_start.hour, org.business_start.minute, org.business_end.hour) == (8, 30, 18)


@pytest.mark.parametrize("text, line, key, words", [
    (GOOD.replace('sector = "retail"', 'sectr = "retail"'), 5, "sectr", "unknown key"),
    (GOOD.replace('role = "hr"', 'role = "hr", colour = "red"'), 10, "colour", "unknown key"),
    (GOOD.replace('timezone = "Europe/London"', 'timezone = 3'), 6, "timezone", "expected str"),
    (GOOD.replace('role = "hr"', 'role = "astronaut"'), 10, "role", "unknown role"),
    (GOOD.replace('handle = "AcmeJobs"', 'handle = "acmecare"'), 10, "handle", "duplicate account"),
    (GOOD.replace('"08:30-18:00"', '"8 to 6"'), 7, "business_hours", "HH:MM-HH:MM"),
    (GOOD.replace('platform = "twitter"', 'platform = "myspace"'), 10, "platform", "unknown platform"),
])
def test_bad_config_names_file_line_and_key(tmp_path, text, line, key, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {key}:"), message
    assert words in message


def test_duplicate_org_and_syntax_error(tmp_path):
    with pytest.raises(ConfigError, match=r":14: id: duplicate organisation id 'acme'"):
        load_config(write(tmp_path, GOOD + GOOD.replace("AcmeCare", "Other").replace("AcmeJobs", "Other2")))
    # a duplicate with a field error of its own: both at once, not the duplicate only once the field is fixed
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, GOOD + GOOD.replace("AcmeCare", "Other").replace("AcmeJobs", "Other2")
                          .replace('business_hours = "08:30-18:00"', 'business_hours = "late"')))
    message = str(caught.value)
    assert ":14: id: duplicate organisation id 'acme'" in message and ":18: business_hours:" in message, message
    with pytest.raises(ConfigError, match=r"bad.toml:2: syntax: invalid TOML"):
        load_config(write(tmp_path, "[[org]]\nid = \n", "bad.toml"))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_two_included_files_listing_the_same_organisation_or_account_fail_at_the_include(tmp_path):
    write(tmp_path, GOOD, "a.toml")
    write(tmp_path, GOOD, "b.toml")
    main = write(tmp_path, 'include = ["a.toml", "b.toml"]\n', "main.toml")
    with pytest.raises(ConfigError) as caught:
        load_config(main)
    message = str(caught.value)
    assert f"{main}:1: include: duplicate organisation id 'acme' in 'b.toml' (also in 'a.toml')" in message, message
    assert "duplicate account twitter:AcmeCare in 'b.toml' (also in 'a.toml')" in message, message
    write(tmp_path, GOOD.replace('id = "acme"', 'id = "other"'), "b.toml")     # another id, the same accounts
    with pytest.raises(ConfigError, match="duplicate account twitter:AcmeJobs in 'b.toml' \\(also in 'a.toml'\\)"):
        load_config(main)
    write(tmp_path, GOOD.replace('id = "acme"', 'id = "other"').replace("AcmeCare", "OtherCare")
          .replace("AcmeJobs", "OtherJobs"), "b.toml")
    assert [o.id for o in load_config(main).organisations] == ["acme", "other"]


def test_include_and_sources_resolve_relative_paths(tmp_path):
    write(tmp_path, GOOD, "orgs.toml")
    main = write(tmp_path, 'include = ["orgs.toml"]\n[settings]\ndatabase = "x.duckdb"\n'
                           '[[source]]\nkind = "twcs"\npath = "in/file.csv"\nrequired = false\n', "main.toml")
    config = load_config(main)
    assert config.database == tmp_path / "x.duckdb"
    assert config.sources[0].path == tmp_path / "in" / "file.csv" and not config.sources[0].required
    assert config.org("acme").name == "Acme"


def test_apply_config_assigns_accounts(store, tmp_path):
    apply_config(store, load_config(write(tmp_path, GOOD)))
    rows = store.con.execute("select handle_key, org_id, role, configured from accounts order by 1").fetchall()
    assert rows == [("acmecare", "acme", "support", True), ("acmejobs", "acme", "careers", True)]
    apply_config(store, load_config(write(tmp_path, GOOD)))  # re-applying is idempotent
    assert store.count("accounts") == 2 and store.count("organisations") == 1


def test_feature_sharding_settings(tmp_path):
    config = load_config(write(tmp_path, '[settings]\nfeature_shards = 8\nshard_dir = "shards"\n' + GOOD))
    assert config.feature_shards == 8 and config.shard_dir == tmp_path / "shards"
    assert load_config(write(tmp_path, GOOD)).feature_shards == 0   # not sharded unless asked
    for value, words in (("-1", "must be 0 (no sharding) or a shard count"), ('"8"', "expected int")):
        path = write(tmp_path, f"[settings]\nfeature_shards = {value}\n" + GOOD)
        with pytest.raises(ConfigError, match=re.escape(f"{path}:2: feature_shards: {words}")):
            load_config(path)
