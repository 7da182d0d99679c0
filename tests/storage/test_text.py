"""Text normalisation before storage: NULs, surrogates, the evaluation-set key."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from storage.text import clean_text, text_form, text_key


def test_nul_bytes_are_removed() -> None:
    assert clean_text("a\x00b\x00") == "ab"


def test_lone_surrogates_become_replacement_characters_and_pairs_are_joined() -> None:
    assert clean_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert clean_text("\ud83d\ude00") == "\U0001f600"


def test_ordinary_text_is_returned_unchanged() -> None:
    text = "Robert'); DROP TABLE messages;-- \t\n\x01 ünïcödé 😀"
    assert clean_text(text) == text


@given(st.text())
def test_cleaned_text_is_utf8_encodable_and_nul_free(text: str) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # raises on a surrogate
    assert "\x00" not in cleaned
    assert clean_text(cleaned) == cleaned


def test_text_key_ignores_case_spacing_and_unicode_form() -> None:
    assert text_key("  Reset my\tPASSWORD ") == text_key("reset my password")
    assert text_key("ﬁle") == text_key("file")  # NFKC
    assert text_key("reset my password") != text_key("reset my passwords")
    assert len(text_key("x")) == 64


def test_text_form_is_the_canonical_form_and_text_key_its_digest() -> None:
    assert text_form("  Ｒｅｓｅｔ my\u00a0PASSWORD？ ") == "reset my password?"  # full-width, NBSP, case
    assert text_key("Ｒｅｓｅｔ my password") == hashlib.sha256(b"reset my password").hexdigest()
