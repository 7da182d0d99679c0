"""PII masking: e-mail addresses, phone numbers, payment cards and IBANs become placeholders.

Each kind has one compiled candidate pattern and a validator (digit counts, the Luhn check for cards, the
ISO 13616 mod-97 checksum and per-country structure for IBANs; both from python-stdnum). Candidates must
stand alone: a digit run glued to a word, to `#`, `/`, `-`, `$` or to another number (`1.5`, `3,2`) is
never masked, which keeps order numbers (`order #123456`, `ORD-2024-0042`), dates (`2024-05-01`,
`01/05/2024`), amounts (`$1,234.56`, `1 234,56 EUR`), times and version strings intact.

When a greedy candidate is not valid as a whole (a phone followed by a year, an IBAN followed by a
capitalised word), its longest valid prefix that ends on a group boundary is masked and scanning goes on
right after it.

Masking is idempotent: the placeholders contain nothing that any pattern matches, and the boundary rules
treat `[`/`]` like letters, so masking an already masked text changes nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from stdnum import iban, luhn, numdb

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
IBAN = "[IBAN]"

# A candidate may not touch a word, a placeholder bracket or the punctuation that joins numbers together.
_BEFORE = r"(?<![\w\[\]#/+\-@$€£¥%])(?<!\d[.,:])"
_AFTER = r"(?![\w\[\]\-/%]|[.,:]\d)"

_EMAIL_RE = re.compile(r"(?<![\w.+%\-\[\]])[\w.+%\-]+@(?:[\w\-]+\.)+[^\W\d_]{2,}(?![\w\-\[\]@]|\.\w)")

_IBAN_RE = re.compile(
    r"(?<![\w\[\]#/\-])"
    r"[A-Za-z]{2}\d{2}(?:[A-Za-z0-9]{11,30}|(?:[ \-]?[A-Za-z0-9]{4}){2,8}(?:[ \-][A-Za-z0-9]{1,3})?)"
    r"(?![\w\[\]\-])"
)


def _standalone(*alternatives: str, before: str = "") -> re.Pattern[str]:
    """Compile the alternatives as one pattern that must not touch a word or number on either side."""
    return re.compile(_BEFORE + before + "(?:" + "|".join(alternatives) + ")" + _AFTER)


_CARD_RE = _standalone(
    r"\d{13,19}",
    r"\d{4}(?P<s>[ \-])\d{4}(?:(?P=s)\d{4}){1,3}(?:(?P=s)\d{1,3})?",  # 4-4-4-4(-3), 4-4-4-1 ...
    r"\d{4}(?P<a>[ \-])\d{6}(?P=a)\d{4,5}",  # Amex 4-6-5, Diners 4-6-4
    before=r"(?<!\+\d )(?<!\+\d\d )(?<!\+\d\d\d )",  # digits after "+44 " belong to a phone number
)

_PHONE_RE = _standalone(
    r"\+\d{1,3}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,4})){1,7}",  # international: +44 20 7946 0958, +1 (555) 123-4567
    r"(?:1[ .\-])?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}",  # NANP: (555) 123-4567, 555-123-4567
    r"0\d{1,4}(?:[ \-]?\d{2,4}){1,4}",  # national trunk prefix: 07700 900123, 020 7946 0958
)

_HAS_DIGIT = re.compile(r"\d")
_DIGIT_RUN_END = re.compile(r"\d(?!\d)\)?")
_ALNUM_RUN_END = re.compile(r"[A-Za-z0-9](?![A-Za-z0-9])")


def luhn_valid(digits: str) -> bool:
    """True if the string of digits passes the Luhn checksum used by payment cards (`stdnum.luhn`)."""
    return luhn.is_valid(digits)


def iban_valid(candidate: str) -> bool:
    """True if `candidate` (spaces or dashes allowed) is an IBAN: a registered country, the BBAN structure and
    length of that country (SWIFT IBAN registry) and the ISO 13616 mod-97 checksum (`stdnum.iban`).

    The national check digits some countries add inside the BBAN are not checked (`check_country=False`):
    a customer's mistyped IBAN is still personal data to mask.
    """
    compact = candidate.replace(" ", "").replace("-", "").upper()
    if not compact.isascii() or not compact.isalnum() or _iban_length(compact[:2]) != len(compact):
        return False  # the cheap test first: masking tries many prefixes of every candidate
    return iban.is_valid(compact, check_country=False)


@functools.cache
def _iban_length(country: str) -> int | None:
    """The length of `country`'s IBANs, from python-stdnum's copy of the SWIFT registry (None: no IBANs)."""
    props = numdb.get("iban").info(country)[0][1]
    bban = props.get("bban") if props else None  # fixed-length fields, e.g. "4!a6!n8!n"
    return 4 + sum(int(width) for width in re.findall(r"(\d+)!", bban)) if bban else None


def _digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def _is_card(candidate: str) -> bool:
    digits = _digits(candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_phone(candidate: str) -> bool:
    count = len(_digits(candidate))
    if candidate.startswith("+"):
        return 8 <= count <= 15
    if candidate.startswith("0"):
        return 10 <= count <= 12
    return True  # the NANP branch has a fixed shape: 10 or 11 digits by construction


def _masker(
    pattern: re.Pattern[str], group_end: re.Pattern[str], valid: Callable[[str], bool], token: str
) -> Callable[[str], str]:
    """Build `text -> text` that replaces the longest valid prefix (ending on a group) of each candidate.

    A candidate with no valid prefix is skipped one character at a time, so a valid number that starts
    inside it (a card after a stray group of digits) is still found.
    """

    def longest_valid(candidate: str) -> int:
        for match in reversed(list(group_end.finditer(candidate))):
            if valid(candidate[: match.end()]):
                return match.end()
        return 0

    def mask(text: str) -> str:
        parts: list[str] = []
        done = position = 0
        while (match := pattern.search(text, position)) is not None:
            length = longest_valid(match.group(0))
            if length:
                parts += (text[done : match.start()], token)
                done = position = match.start() + length
            else:
                position = match.start() + 1
        if not parts:
            return text
        parts.append(text[done:])
        return "".join(parts)

    return mask


_mask_email = _masker(_EMAIL_RE, re.compile(r"$"), lambda _: True, EMAIL)
_mask_iban = _masker(_IBAN_RE, _ALNUM_RUN_END, iban_valid, IBAN)
_mask_card = _masker(_CARD_RE, _DIGIT_RUN_END, _is_card, CARD)
_mask_phone = _masker(_PHONE_RE, _DIGIT_RUN_END, _is_phone, PHONE)


def mask_pii(text: str) -> str:
    """Replace e-mail addresses, phone numbers, payment cards and IBANs with placeholders.

    Order numbers, dates, amounts, times and version strings are left alone. Idempotent.

    Args:
        text: Any text (a customer's question, an answer, a correction).

    Returns:
        The text with `[EMAIL]`, `[PHONE]`, `[CARD]` and `[IBAN]` in place of the personal data.

    Example:
        >>> mask_pii("I'm jo@example.com, card 4111 1111 1111 1111, order #123456")
        "I'm [EMAIL], card [CARD], order #123456"
    """
    if "@" in text:
        text = _mask_email(text)
    if _HAS_DIGIT.search(text) is None:
        return text
    return _mask_phone(_mask_card(_mask_iban(text)))
