"""How text is normalised before it is stored, identically on SQLite and PostgreSQL.

PostgreSQL cannot store NUL characters in text, and no UTF-8 database can store lone UTF-16 surrogates
(which Python strings may hold, e.g. from a broken JSON escape). So every string the repository stores is
first passed through `clean_text`:

* NUL characters (U+0000) are removed;
* a surrogate pair written as two code points becomes the character it encodes;
* a lone surrogate becomes U+FFFD (the replacement character).

Everything else (other control characters, quotes, SQL-looking text, very long text) is stored exactly.
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


def text_key(text: str) -> str:
    """A stable key for "the same text": sha256 of the NFKC, case-folded, whitespace-collapsed form.

    Used to keep each evaluation example once, whatever its spacing or case.

    Example:
        >>> text_key("Reset  my PASSWORD ") == text_key("reset my password")
        True
    """
    normalised = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", clean_text(text)).casefold()).strip()
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()
