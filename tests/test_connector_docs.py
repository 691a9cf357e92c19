"""docs/connectors.md is enough to set up a live source: its example config is valid, every platform
says how to get access and credentials, and it agrees with `maturity sync --help` on exit codes."""
from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config

DOC = (Path(__file__).resolve().parents[1] / "docs" / "connectors.md").read_text(encoding="utf-8")


def words(text: str) -> str:
    return re.sub(r"[\s│*]+", " ", text)


def test_the_example_source_blocks_are_a_valid_config(tmp_path):
    example = re.search(r"```toml\n(.*?)```", DOC, re.S).group(1)
    path = tmp_path / "orgs.toml"
    path.write_text(example, encoding="utf-8")
    config = load_config(path)
    assert sorted(s.kind for s in config.sources) == ["bluesky", "mastodon", "reddit", "x"]
    assert sorted(a.platform for a in config.org("acme").accounts) == ["bluesky", "mastodon", "reddit", "twitter"]


def test_every_platform_says_access_credentials_handles_and_time():
    for platform, credential in (("X", "MATURITY_X_BEARER_TOKEN"), ("Reddit", "MATURITY_REDDIT_USER_AGENT"),
                                 ("Mastodon", "MATURITY_MASTODON_INSTANCE"), ("Bluesky", "App passwords")):
        section = DOC.split(f"\n### {platform}\n", 1)[1].split("\n### ", 1)[0]
        for topic in ("Access:", "Credentials", "Time:", credential):
            assert topic in section, (platform, topic)
    assert "kind** is `x`" in DOC and "`twitter`" in DOC and "`u/name`" in DOC and "`instance`" in DOC


def test_sync_help_and_the_docs_agree_on_exit_codes():
    help_text = words(CliRunner().invoke(app, ["sync", "--help"], terminal_width=200).output)
    doc = words(DOC)
    for code, meaning in (("0", "every account synced"), ("1", "some accounts failed"), ("2", "a usage error")):
        assert f"{code} {meaning}" in help_text, (code, help_text)
        assert f"{code} {meaning}" in doc, code
    assert "docs/connectors.md" in help_text
