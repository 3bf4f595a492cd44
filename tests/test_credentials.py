"""Credentials from code, TOML files and the environment; secrets stay hidden."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bingx_assets import ConfigurationError, Credentials
from bingx_assets._credentials import check_unique

KEY = "A" * 60 + "wxyz"
SECRET = "S3CR3T" * 10


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_repr_shows_label_and_masked_key_only() -> None:
    creds = Credentials(KEY, SECRET, "main", 42)
    text = repr(creds) + str(creds)
    assert SECRET not in text
    assert KEY not in text
    assert "'main'" in text
    assert "wxyz" in text
    assert creds.uid == "42"


def test_an_unlabelled_key_is_named_by_its_position_never_by_the_key() -> None:
    # Issue #13: the label becomes the metrics' `key` label; nothing of the api key in it.
    unlabelled = Credentials(KEY, SECRET)
    assert unlabelled.label == ""
    listed = check_unique([Credentials(KEY[::-1], SECRET, "main"), unlabelled])
    assert [c.label for c in listed] == ["main", "key-2"]
    assert listed[1].api_key == KEY


def test_file_with_several_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        [[keys]]
        label = "main"
        api_key = "{KEY}"
        secret_key = "{SECRET}"
        uid = 16844999

        [[keys]]
        api_key = "{KEY[::-1]}"
        secret_key = "{SECRET}"
        """,
    )
    first, second = Credentials.from_file(path)
    assert (first.label, first.uid) == ("main", "16844999")
    assert (second.label, second.api_key, second.uid) == ("key-2", KEY[::-1], None)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not toml [", "not valid TOML"),
        ("title = 'x'", r"expected one or more \[\[keys\]\]"),
        ("keys = [1]", "key #1: expected a table"),
        (f"[[keys]]\napi_key = '{KEY}'", r"key #1 has no secret_key$"),
        ("[[keys]]\nlabel = 'main'\nsecret_key = 's'", r"key #1 \('main'\) has no api_key$"),
        ("[[keys]]\nlabel = ''", "key #1 has no api_key and no secret_key$"),
        (f"[[keys]]\napi_key = '{KEY}'\nsecret_key = 's'\npassword = 'x'", "unknown field"),
        (f"[[keys]]\napi_key = '{KEY}'\nsecret_key = 's'\nuid = 'abc'", "numeric UID"),
        (f"[[keys]]\napi_key = '{KEY}'\nsecret_key = 's'\nlabel = 3", "label must be"),
        # Sent in a header with every request: a 5 MB key is a mistake, not a key.
        (f"[[keys]]\napi_key = '{'k' * 513}'\nsecret_key = 's'", "513 characters long"),
        (f"[[keys]]\napi_key = '{KEY}'\nsecret_key = '{'s' * 5_000_000}'", "5000000 char"),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else value,
)
def test_bad_files_give_clear_errors(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as caught:
        Credentials.from_file(write(tmp_path, text))
    assert SECRET not in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        Credentials.from_file(tmp_path / "nope.toml")


def test_world_readable_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bingx_assets")
    text = f"[[keys]]\napi_key = '{KEY}'\nsecret_key = '{SECRET}'\n"
    Credentials.from_file(write(tmp_path, text, 0o600))
    assert caplog.records == []
    Credentials.from_file(write(tmp_path, text, 0o644))
    assert "others can read it" in caplog.records[0].getMessage()
    assert SECRET not in caplog.text


def test_environment_pairs() -> None:
    env = {
        "BINGX_API_KEY": KEY,
        "BINGX_SECRET_KEY": SECRET,
        "BINGX_API_KEY_SUB1": KEY[::-1],
        "BINGX_SECRET_KEY_SUB1": SECRET,
        "UNRELATED": "x",
    }
    found = Credentials.from_env(env)
    assert [(c.label, c.api_key) for c in found] == [("default", KEY), ("sub1", KEY[::-1])]


def test_environment_without_a_matching_secret() -> None:
    with pytest.raises(ConfigurationError, match="BINGX_SECRET_KEY_X is not"):
        Credentials.from_env({"BINGX_API_KEY_X": KEY})
    with pytest.raises(ConfigurationError, match="no keys"):
        Credentials.from_env({})
