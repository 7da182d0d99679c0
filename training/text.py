"""Text normalisation shared by training, evaluation and inference.

`normalise_text` is the form a text is given to the model in (case and Unicode form kept: the encoder's
tokenizer handles them). Whether two texts are *the same text* (deduplication, the evaluation set) is decided
by `storage.text.text_key` alone (NFKC, case-folded, whitespace collapsed); training imports it from there.
"""

from __future__ import annotations

import re

MAX_TEXT_CHARS = 2000
"""Texts longer than this are cut (the encoder truncates far earlier in tokens anyway)."""

_WHITESPACE = re.compile(r"\s+")


def normalise_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """Strip, collapse runs of whitespace to one space and cap the length.

    Applied everywhere a text meets the model (training rows, evaluation rows, live questions), so the
    model never sees a form it was not trained on.

    Args:
        text: Any string.
        max_chars: Keep at most this many characters.

    Returns:
        The normalised text (possibly empty).

    Example:
        >>> normalise_text("  How do\\n I   reset\\tit? ")
        'How do I reset it?'
    """
    return _WHITESPACE.sub(" ", text).strip()[:max_chars].rstrip()
