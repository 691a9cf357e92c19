"""Text derivations: every flag or field the features read from a post's text, each defined once here
as a DuckDB macro over the text.

features/facts.py applies them to the text stored in `posts` when it derives the conversation facts
the builds read; a changed definition changes the facts code, so the next refresh (or build) derives
every fact again, without reloading posts. Customers' text is not stored by default (README,
Privacy); for those posts the load keeps what the features need from it, `dropped_text_is_question`,
computed with the same macro (pipeline/store.py installs these macros on its connection).
"""
from __future__ import annotations

import duckdb

# Wording that moves a conversation to a private channel: whole words, any case.
PRIVATE_CHANNEL = r"(?i)\b(dm|dms|pm|direct message|private message|private messages|message us|inbox)\b"
LINK = r"https?://"
HASHTAG = r"(?:^|\s)#(\w+)"
# The name or initials ending a text after ^ or a dash (^JK, -Becky), before any trailing links.
SIGNATURE = r"\s(?:\^\s?|[-–—~*]\s?)([A-Z][A-Za-z]{0,11})\s*(?:https?://\S+\s*)*$"


def _literal(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def macros_sql() -> str:
    """The macros' DDL; a missing text (null) derives like an empty one."""
    return f"""
create or replace temp macro is_question(t) as coalesce(t, '') like '%?%';
create or replace temp macro private_channel(t) as regexp_matches(coalesce(t, ''), {_literal(PRIVATE_CHANNEL)});
create or replace temp macro has_link(t) as regexp_matches(coalesce(t, ''), {_literal(LINK)});
create or replace temp macro hashtags(t) as regexp_extract_all(lower(coalesce(t, '')), {_literal(HASHTAG)}, 1);
create or replace temp macro signature(t) as nullif(regexp_extract(coalesce(t, ''), {_literal(SIGNATURE)}, 1), '');
"""


def install_text_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(macros_sql())
