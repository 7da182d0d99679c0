"""Labelled examples: loading (CSV, JSONL, intents YAML), stratified splitting and hashing."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from training.errors import DataError
from training.intents import OUT_OF_SCOPE, IntentsFileError, parse_intents
from training.text import MAX_TEXT_CHARS, normalise_text

__all__ = [
    "OUT_OF_SCOPE",
    "Example",
    "dataset_hash",
    "label_counts",
    "load_examples",
    "normalise_text",
    "split",
]

_LABEL_COLUMNS = ("label", "category", "intent")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled question. `text` is normalised (see `normalise_text`)."""

    text: str
    label: str


@dataclass(frozen=True, slots=True)
class _Row:
    text: str
    label: str
    line: int


def load_examples(path: str | Path, *, out_of_scope_label: str = OUT_OF_SCOPE) -> list[Example]:
    """Read labelled examples from a CSV, JSONL or intents YAML file.

    Formats (chosen by the file extension):

    - `.csv`: a header with `text` and `label` (or `category`, as in BANKING77/HWU64, or `intent`).
    - `.jsonl` / `.ndjson`: one `{"text": ..., "label": ...}` object per line.
    - `.yaml` / `.yml`: an intents file (`training.intents`: `intents: [{name, answer, examples: [...]}]` plus
      optional `out_of_scope: [...]`, whose examples get `out_of_scope_label`), validated by the same rules as
      the bot's catalog; `company` and the answers may be left out here.

    Texts are normalised; the same text with two different labels is an error.

    Args:
        path: The file.
        out_of_scope_label: Label given to the YAML `out_of_scope` examples.

    Returns:
        The examples in file order.

    Raises:
        DataError: Missing, empty, non-UTF-8 or malformed file; the message names the file and line.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{file}: no such file; give the path of a CSV, JSONL or intents YAML file")
    raw = file.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{file}:{line}: not UTF-8 text ({exc.reason}); re-save the file as UTF-8") from None
    if not content.strip():
        raise DataError(f"{file}: the file is empty; add labelled examples")
    suffix = file.suffix.lower()
    if suffix == ".csv":
        rows = _read_csv(file, content)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _read_jsonl(file, content)
    elif suffix in (".yaml", ".yml"):
        rows = _read_intents_yaml(file, content, out_of_scope_label)
    else:
        raise DataError(f"{file}: unknown format {suffix!r}; use .csv (text,label), .jsonl or an intents .yaml")
    if not rows:
        raise DataError(f"{file}: no examples found; add labelled examples")
    _check_conflicts(file, rows)
    return [Example(row.text, row.label) for row in rows]


def _clean(file: Path, line: int, text: object, label: object) -> _Row:
    if not isinstance(text, str) or not isinstance(label, str):
        raise DataError(f"{file}:{line}: 'text' and 'label' must be strings")
    clean_text, clean_label = normalise_text(text, MAX_TEXT_CHARS), label.strip()
    if not clean_text:
        raise DataError(f"{file}:{line}: empty text; remove the row or fill it in")
    if not clean_label:
        raise DataError(f"{file}:{line}: empty label; every example needs a label")
    return _Row(clean_text, clean_label, line)


def _read_csv(file: Path, content: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise DataError(f"{file}:1: unreadable CSV header ({exc}); the first line must be 'text,label'") from None
    if "text" not in header:
        raise DataError(f"{file}:1: no 'text' column (found {header}); the first line must be 'text,label'")
    label_column = next((name for name in _LABEL_COLUMNS if name in header), None)
    if label_column is None:
        raise DataError(f"{file}:1: no 'label' (or 'category') column (found {header}); add one")
    text_at, label_at = header.index("text"), header.index(label_column)
    rows: list[_Row] = []
    line = reader.line_num
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if not any(field.strip() for field in record):
                continue
            if len(record) != len(header):
                raise DataError(
                    f"{file}:{start}: {len(record)} fields but the header has {len(header)}; "
                    "quote texts that contain commas"
                )
            rows.append(_clean(file, start, record[text_at], record[label_at]))
    except csv.Error as exc:
        raise DataError(f"{file}:{reader.line_num}: malformed CSV ({exc}); check the quoting") from None
    return rows


def _read_jsonl(file: Path, content: str) -> list[_Row]:
    rows: list[_Row] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{file}:{number}: invalid JSON ({exc.msg}); each line must be one JSON object") from None
        if not isinstance(record, dict) or "text" not in record or "label" not in record:
            raise DataError(f'{file}:{number}: expected an object like {{"text": "...", "label": "..."}}')
        rows.append(_clean(file, number, record["text"], record["label"]))
    return rows


def _read_intents_yaml(file: Path, content: str, out_of_scope_label: str) -> list[_Row]:
    """The examples of an intents file (`training.intents`: the bot's catalog reads the same file, same rules)."""
    try:
        parsed = parse_intents(content, source=str(file), require_answers=False, out_of_scope_label=out_of_scope_label)
    except IntentsFileError as exc:
        raise DataError(exc.located()) from None
    rows: list[_Row] = []
    for i, intent in enumerate(parsed.spec.intents):
        for j, text in enumerate(intent.examples):
            rows.append(_clean(file, parsed.line("intents", i, "examples", j) or 1, text, intent.name))
    for j, text in enumerate(parsed.spec.out_of_scope):
        rows.append(_clean(file, parsed.line("out_of_scope", j) or 1, text, out_of_scope_label))
    return rows


def _check_conflicts(file: Path, rows: Sequence[_Row]) -> None:
    first: dict[str, _Row] = {}
    for row in rows:
        previous = first.setdefault(row.text, row)
        if previous.label != row.label:
            raise DataError(
                f"{file}:{row.line}: {row.text!r} is labelled {row.label!r} here but {previous.label!r} at line "
                f"{previous.line}; keep one label"
            )


def split(
    examples: Sequence[Example], val_ratio: float, seed: int = 0, *, keep_below: int = 2
) -> tuple[list[Example], list[Example]]:
    """Stratified train/validation split.

    Each label sends about `val_ratio` of its examples (at least one) to validation, but always keeps at least
    one in train; labels with fewer than `keep_below` examples (by default: a single one) stay entirely in train.

    Args:
        examples: All examples.
        val_ratio: Share for validation, strictly between 0 and 1.
        seed: Shuffling seed (same seed, same split).
        keep_below: Labels with fewer examples than this are not split.

    Returns:
        (train, validation), each in the original order.

    Raises:
        ValueError: `val_ratio` is out of range.
    """
    if not 0.0 < val_ratio < 1.0:
        raise ValueError(f"val_ratio must be between 0 and 1 (exclusive), got {val_ratio}")
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_label[example.label].append(index)
    rng = random.Random(seed)
    held_out: set[int] = set()
    for label in sorted(by_label):
        indices = by_label[label]
        if len(indices) < max(2, keep_below):
            continue
        count = min(max(1, round(len(indices) * val_ratio)), len(indices) - 1)
        held_out.update(rng.sample(indices, count))
    train = [ex for i, ex in enumerate(examples) if i not in held_out]
    val = [ex for i, ex in enumerate(examples) if i in held_out]
    return train, val


def repeat_rare(examples: Sequence[Example], at_least: int) -> list[Example]:
    """`examples` with each label that has fewer than `at_least` of them repeated (in turn) up to `at_least`."""
    by_label: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        by_label[example.label].append(example)
    extra = [
        group[i % len(group)]
        for group in by_label.values()
        if len(group) < at_least
        for i in range(at_least - len(group))
    ]
    return [*examples, *extra]


def dataset_hash(examples: Iterable[Example]) -> str:
    """Order-independent sha256 of the examples (the same multiset of rows gives the same hash)."""
    lines = sorted(f"{ex.label}\t{ex.text}" for ex in examples)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def label_counts(examples: Iterable[Example]) -> dict[str, int]:
    """Number of examples per label, sorted by label."""
    counts: dict[str, int] = defaultdict(int)
    for example in examples:
        counts[example.label] += 1
    return dict(sorted(counts.items()))
