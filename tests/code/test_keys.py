"""API keys at rest: the key file holds digests (`leadscore keys new`), clear keys are still read and can be
hashed in place, and a malformed line is reported by its number (serving/config.py)."""

from __future__ import annotations

import stat

import pytest

from serving.config import ApiKeys, ConfigError, add_key, hash_key_file, key_digest
from serving.guard import matching_key


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    path = tmp_path / "keys"
    monkeypatch.setenv("LEADSCORE_API_KEYS_FILE", str(path))
    monkeypatch.delenv("LEADSCORE_API_KEYS", raising=False)
    return path


def test_a_new_key_is_stored_as_its_digest_only(key_file) -> None:
    key, ident = add_key(key_file, "crm front")
    text = key_file.read_text()
    assert key not in text and text == f"sha256:{key_digest(key)}  # crm front\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    digests = ApiKeys().current()
    assert matching_key(key, digests) == ident == key_digest(key)[:12]
    assert matching_key(key + "x", digests) is None and matching_key("", digests) is None


def test_clear_keys_are_read_and_hashed_in_place(key_file) -> None:
    key_file.write_text("# team keys\nclear-key-0123456789abc\n")
    before = ApiKeys().current()
    assert hash_key_file(key_file) == 1
    assert "clear-key" not in key_file.read_text() and key_file.read_text().startswith("# team keys\nsha256:")
    assert ApiKeys().current() == before
    assert hash_key_file(key_file) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [("sha256:abc\n", "line 1: sha256: must be followed by 64 hex digits"),
     ("# c\nshort\n", "line 2: API keys must have at least 16 characters"),
     ("# only a comment\n", "no API key configured")],
)  # fmt: skip
def test_a_malformed_key_file_is_refused_naming_the_line(key_file, content, message) -> None:
    key_file.write_text(content)
    with pytest.raises(ConfigError, match=message):
        ApiKeys()
    if "no API key" not in message:  # a file of comments is well formed, only empty
        with pytest.raises(ConfigError):
            hash_key_file(key_file)
    assert key_file.read_text() == content, "a malformed file is not rewritten"
