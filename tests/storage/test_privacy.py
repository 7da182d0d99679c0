"""PII masking: examples, hypothesis properties (masked / untouched / idempotent) and speed."""

from __future__ import annotations

import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.privacy import CARD, EMAIL, IBAN, PHONE, iban_valid, luhn_valid, mask_pii

# --- generators --------------------------------------------------------------------------------
words = st.text(alphabet=string.ascii_letters + "äéßñ'", min_size=1, max_size=9)
sentence = st.lists(words, min_size=0, max_size=6).map(" ".join)
punctuation = st.sampled_from(["", ",", ".", "!", "?", ";", ")"])
separator = st.sampled_from([" ", "-"])


def _luhn_complete(partial: str) -> str:
    """Append the check digit that makes `partial` Luhn-valid."""
    for check in "0123456789":
        if luhn_valid(partial + check):
            return partial + check
    raise AssertionError("unreachable")


def _iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    check = 98 - int("".join(str(int(char, 36)) for char in rearranged)) % 97
    return f"{country}{check:02d}{bban}"


def _group(text: str, size: int, sep: str) -> str:
    return sep.join(text[i : i + size] for i in range(0, len(text), size))


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.from_regex(r"[a-z0-9]([a-z0-9._+\-]{0,14}[a-z0-9])?", fullmatch=True))
    labels = draw(
        st.lists(st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,10}[a-z0-9])?", fullmatch=True), min_size=1, max_size=3)
    )
    tld = draw(st.from_regex(r"[a-z]{2,6}", fullmatch=True))
    address = f"{local}@{'.'.join(labels)}.{tld}"
    return address.upper() if draw(st.booleans()) and draw(st.booleans()) else address


def _digits(draw: st.DrawFn, count: int) -> str:
    return "".join(draw(st.lists(st.sampled_from("0123456789"), min_size=count, max_size=count)))


@st.composite
def phones(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["international", "nanp", "uk", "fr"]))
    sep = draw(st.sampled_from([" ", "-", "."]))
    if kind == "international":
        country = draw(st.sampled_from(["1", "33", "44", "49", "353", "61", "91"]))
        subscriber = str(draw(st.integers(1, 9))) + _digits(draw, draw(st.integers(7, 14 - len(country))))
        sizes = draw(st.sampled_from([2, 3, 4]))
        grouped = _group(subscriber, sizes, draw(st.sampled_from([" ", "-", ""])))
        return f"+{country} {grouped}" if draw(st.booleans()) else f"+{country}{grouped}"
    if kind == "nanp":
        area, exchange, line = _digits(draw, 3), _digits(draw, 3), _digits(draw, 4)
        style = draw(st.sampled_from(["paren", "plain", "one"]))
        if style == "paren":
            return f"({area}) {exchange}-{line}"
        if style == "one":
            return f"1-{area}-{exchange}-{line}"
        return f"{area}{sep}{exchange}{sep}{line}"
    if kind == "uk":
        number = "0" + _digits(draw, 10)
        layout = draw(st.sampled_from([(5, 6), (3, 4, 4), (4, 3, 4), (11,)]))
        parts, start = [], 0
        for size in layout:
            parts.append(number[start : start + size])
            start += size
        return draw(st.sampled_from([" ", "-"])).join(parts)
    number = "0" + str(draw(st.integers(1, 9))) + _digits(draw, 8)
    return _group(number, 2, draw(st.sampled_from([" ", "-"])))


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    number = _luhn_complete(str(draw(st.integers(1, 9))) + _digits(draw, length - 2))
    layout = draw(st.sampled_from(["plain", "fours", "amex"]))
    if layout == "amex" and length == 15:
        sep = draw(separator)
        return f"{number[:4]}{sep}{number[4:10]}{sep}{number[10:]}"
    if layout == "fours" and length >= 13:
        return _group(number, 4, draw(separator))
    return number


IBAN_SHAPES = {"GB": "AAAA" + "9" * 14, "DE": "9" * 18, "FR": "9" * 23, "NL": "AAAA" + "9" * 10, "BE": "9" * 12}


@st.composite
def ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(IBAN_SHAPES)))
    bban = "".join(
        draw(st.sampled_from(string.ascii_uppercase if kind == "A" else string.digits)) for kind in IBAN_SHAPES[country]
    )
    iban = _iban(country, bban)
    return _group(iban, 4, " ") if draw(st.booleans()) else iban


# --- things that must never be masked ------------------------------------------------------------
@st.composite
def harmless(draw: st.DrawFn) -> str:
    year, month, day = draw(st.integers(1990, 2035)), draw(st.integers(1, 12)), draw(st.integers(1, 28))
    hour, minute = draw(st.integers(0, 23)), draw(st.integers(0, 59))
    amount = draw(st.integers(0, 9_999_999))
    cents = draw(st.integers(0, 99))
    return draw(
        st.sampled_from(
            [
                f"order #{draw(st.integers(1, 10**12))}",
                f"ORD-{year}-{draw(st.integers(0, 9999)):04d}",
                f"#A-{draw(st.integers(10000, 99999))}",
                f"ticket {draw(st.integers(1, 10**12))}",
                f"{year}-{month:02d}-{day:02d}",
                f"{day:02d}/{month:02d}/{year}",
                f"{month}/{day}/{year}",
                f"{day:02d}.{month:02d}.{year}",
                f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z",
                f"${amount:,}.{cents:02d}",
                f"{amount:,}".replace(",", " ") + f",{cents:02d} EUR",
                f"{amount:,}.{cents:02d} USD",
                f"{day} May {year}",
                f"€{amount:,}".replace(",", ".") + f",{cents:02d}",
                f"{hour:02d}:{minute:02d}",
                f"{hour}:{minute:02d}:{draw(st.integers(0, 59)):02d}",
                f"v{draw(st.integers(0, 20))}.{draw(st.integers(0, 99))}.{draw(st.integers(0, 999))}",
                f"{draw(st.integers(0, 20))}.{draw(st.integers(0, 99))}.{draw(st.integers(0, 99999))}.{cents}",
                f"{draw(st.integers(1, 999))}%",
            ]
        )
    )


PROPERTY = settings(max_examples=150, deadline=None)


@st.composite
def embedded(draw: st.DrawFn, strategy: st.SearchStrategy[str]) -> tuple[str, str, str]:
    """(text before, the item, text after) with ordinary words around the item."""
    return draw(sentence), draw(strategy), draw(punctuation) + " " + draw(sentence)


@pytest.mark.parametrize(
    ("strategy", "token"), [(emails(), EMAIL), (phones(), PHONE), (cards(), CARD), (ibans(), IBAN)], ids=str
)
@PROPERTY
@given(data=st.data())
def test_pii_embedded_in_text_is_masked_exactly(
    strategy: st.SearchStrategy[str], token: str, data: st.DataObject
) -> None:
    before, item, after = data.draw(embedded(strategy))
    assert mask_pii(f"{before} {item}{after}") == f"{before} {token}{after}", item


@PROPERTY
@given(st.lists(harmless(), min_size=1, max_size=4), st.lists(words, min_size=5, max_size=5))
def test_orders_dates_amounts_times_versions_are_untouched(items: list[str], fillers: list[str]) -> None:
    text = " ".join(f"{filler} {item}" for filler, item in zip(fillers, items, strict=False))
    assert mask_pii(text) == text


@PROPERTY
@given(st.lists(st.one_of(emails(), phones(), cards(), ibans(), harmless(), words), min_size=1, max_size=8))
def test_masking_is_idempotent_on_mixed_text(parts: list[str]) -> None:
    once = mask_pii(" ".join(parts))
    assert mask_pii(once) == once


@PROPERTY
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_masking_any_text_is_idempotent_and_keeps_letters(text: str) -> None:
    once = mask_pii(text)
    assert mask_pii(once) == once
    if not any(char.isdigit() for char in text) and "@" not in text:
        assert once == text


# --- hand-picked examples ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jo.doe+tag@example.co.uk now", "mail [EMAIL] now"),
        ("JO@EXAMPLE.COM.", "[EMAIL]."),
        ("call +44 20 7946 0958 today", "call [PHONE] today"),
        ("+1 (555) 123-4567", "[PHONE]"),
        ("(555) 123-4567 or 555-123-4567 or 555.123.4567", "[PHONE] or [PHONE] or [PHONE]"),
        ("07700 900123, 020 7946 0958, 0161 496 0000", "[PHONE], [PHONE], [PHONE]"),
        ("+44 (0)20 7946 0958 and +4915112345678", "[PHONE] and [PHONE]"),
        ("1-800-555-0199", "[PHONE]"),
        ("card 4111 1111 1111 1111 exp 12/27", "card [CARD] exp 12/27"),
        ("4111-1111-1111-1111 / 4111111111111111", "[CARD] / [CARD]"),
        ("amex 3782 822463 10005", "amex [CARD]"),
        ("IBAN GB82 WEST 1234 5698 7654 32.", "IBAN [IBAN]."),
        ("DE89370400440532013000", "[IBAN]"),
        ("iban: gb82west12345698765432", "iban: [IBAN]"),
        ("BE68 5390 0754 7034 THEN pay", "[IBAN] THEN pay"),  # trailing capitalised word is not swallowed
        ("4111 1111 1111 1111 2024", "[CARD] 2024"),  # longest valid prefix
        ("+44 20 7946 0958 2024", "[PHONE] 2024"),
    ],
)
def test_examples_are_masked(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order #123456 and ORD-2024-0042",
        "order #0012345678",
        "on 2024-05-01 or 01/05/2024 or 1.5.2024 or 2024/05/01 at 10:30",
        "2024-05-01T10:30:00Z to 2024-05-02 2024-05-03",
        "$1,234.56, 1 234,56 EUR, €1.234,56, 1,000,000.00 USD",
        "version 3.11.7, v1.2.3, 1.0.0-rc1, build 10.0.19045.2965",
        "4111 1111 1111 1112",  # fails the Luhn check
        "GB82 WEST 1234 5698 7654 33",  # bad IBAN checksum
        "tracking 1234567890",
        "+1 234",  # too short for a phone
        "user@localhost",  # no top-level domain
        "[EMAIL] [PHONE] [CARD] [IBAN]",
    ],
)
def test_lookalikes_are_untouched(text: str) -> None:
    assert mask_pii(text) == text


def test_luhn_and_iban_validators() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and iban_valid("de89370400440532013000")
    assert not iban_valid("GB82 WEST 1234 5698 7654 3")  # wrong length for GB
    assert not iban_valid("XX82WEST12345698765432")  # unknown country
    assert not iban_valid("GB25 1234 1234 5698 7654 32")  # checksum right, but a GB bank code is 4 letters
    assert iban_valid("BE68 5390 0754 7034") and not iban_valid("BE68 5390 0754 703")


# --- speed ----------------------------------------------------------------------------------------
def test_short_question_is_masked_in_well_under_a_tenth_of_a_millisecond() -> None:
    question = "Hi, my order #123456 from 2024-05-01 never arrived, can you check? I paid $49.99"
    runs = 2000
    start = time.perf_counter()
    for _ in range(runs):
        mask_pii(question)
    per_call = (time.perf_counter() - start) / runs
    assert per_call < 1e-4, f"{per_call * 1e6:.1f} µs per question"


@pytest.mark.parametrize("chunk", ["1 ", "+1 2 ", "0 1-", "4111 ", "GB82 ", "a@b.", "12-34-56 "])
def test_adversarial_input_is_linear(chunk: str) -> None:
    text = chunk * 5000
    start = time.perf_counter()
    mask_pii(text)
    assert time.perf_counter() - start < 2.0
