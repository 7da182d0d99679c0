"""How text is normalised before it is stored, identically on SQLite and PostgreSQL.

PostgreSQL cannot store NUL characters in text, and no UTF-8 database can store lone UTF-16 surrogates
(which Python strings may hold, e.g. from a broken JSON escape). So every string the repository stores is
first passed through `clean_text`:

* NUL characters (U+0000) are removed;
* a surrogate pair written as two code points becomes the character it encodes;
* a lone surrogate becomes U+FFFD (the replacement character).

Everything else (other control characters, quotes, SQL-looking text, very long text) is stored exactly.

"The same text" is defined here, once, for the whole product: `text_form` (NFKC, case-folded,
whitespace-collapsed) and its digest `text_key`. The frozen evaluation set is keyed by it in the database, and
training uses the same function to exclude evaluation questions and to deduplicate, so a variant that differs
only in case, spacing or Unicode form (full-width letters, ligatures) is one text everywhere.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Make `text` storable: drop NULs, join surrogate pairs, replace lone surrogates with U+FFFD.

    Example:
        >>> clean_text("a\\x00b\\ud800")
        'ab\\ufffd'
    """
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _SURROGATE.search(text) is not None:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def text_form(text: str) -> str:
    """The canonical form of "the same text": cleaned, NFKC-normalised, case-folded, whitespace collapsed.

    Two texts are the same text exactly when their forms are equal (`text_key` is the form's digest).

    Example:
        >>> text_form("  Ｒｅｓｅｔ  my\tPASSWORD ")
        'reset my password'
    """
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", clean_text(text)).casefold()).strip()


def text_key(text: str) -> str:
    """A stable key for "the same text": sha256 (hex) of `text_form(text)`.

    Keys the frozen evaluation set in the database; training excludes and deduplicates with the same key.

    Example:
        >>> text_key("Reset  my PASSWORD ") == text_key("reset my password")
        True
    """
    return hashlib.sha256(text_form(text).encode("utf-8")).hexdigest()
