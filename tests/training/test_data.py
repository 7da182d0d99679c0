"""Loading labelled examples (CSV, JSONL, intents YAML), splitting and hashing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.factories import labelled_examples
from training.data import Example, dataset_hash, label_counts, load_examples, normalise_text, repeat_rare, split
from training.errors import DataError


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_normalise_text_strips_collapses_and_caps() -> None:
    assert normalise_text("  How do\n I   reset\tit? ") == "How do I reset it?"
    assert normalise_text("a" * 50, max_chars=10) == "a" * 10
    assert normalise_text(" \n\t ") == ""


def test_csv_with_label_column(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", 'text,label\n"Hello,  world",greet\nBye now,bye\n')
    assert load_examples(path) == [Example("Hello, world", "greet"), Example("Bye now", "bye")]


def test_csv_with_category_column_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "\ufefftext,category\nWhere is my card?,card_arrival\n\nhi,greet\n")
    assert load_examples(path) == [Example("Where is my card?", "card_arrival"), Example("hi", "greet")]


def test_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path, "d.jsonl", '{"text": "hi", "label": "greet"}\n\n{"text": "bye", "label": "bye"}\n')
    assert load_examples(path) == [Example("hi", "greet"), Example("bye", "bye")]


INTENTS_YAML = """\
intents:
  - name: reset_password
    answer: "Use the reset link."
    examples: ["How do I reset my password?", "forgot password"]
  - name: refund
    answer: "Refunds take 5 days."
    examples:
      - I want a refund
out_of_scope:
  - "What's the weather tomorrow?"
"""


def test_intents_yaml(tmp_path: Path) -> None:
    examples = load_examples(write(tmp_path, "intents.yaml", INTENTS_YAML))
    assert examples == [
        Example("How do I reset my password?", "reset_password"),
        Example("forgot password", "reset_password"),
        Example("I want a refund", "refund"),
        Example("What's the weather tomorrow?", "out_of_scope"),
    ]
    custom = load_examples(tmp_path / "intents.yaml", out_of_scope_label="none")
    assert custom[-1] == Example("What's the weather tomorrow?", "none")


def test_intents_yaml_is_read_with_the_catalogs_schema(tmp_path: Path) -> None:
    # Answers and company are optional for training; every scalar is read as the text written.
    path = write(tmp_path, "i.yaml", "intents:\n  - name: yes_no\n    examples: [yes, 'no', 2024]\nout_of_scope:\n")
    assert load_examples(path) == [Example("yes", "yes_no"), Example("no", "yes_no"), Example("2024", "yes_no")]
    # The configured out-of-scope label is reserved too.
    with pytest.raises(DataError, match=r"i\.yaml:2: intents\[0\] \(yes_no\)\.name: 'yes_no' is reserved"):
        load_examples(path, out_of_scope_label="yes_no")


def test_intents_yaml_same_example_twice_under_one_label_is_kept_under_two_is_refused(tmp_path: Path) -> None:
    content = "intents:\n  - name: a\n    examples:\n      - refund please\n      - Refund  please\n"
    assert load_examples(write(tmp_path, "i.yaml", content)) == [
        Example("refund please", "a"),
        Example("Refund please", "a"),
    ]
    content += "out_of_scope:\n  - REFUND PLEASE\n"
    with pytest.raises(DataError, match=r"i\.yaml:7: out_of_scope\[0\]: .*under both 'a' and 'out_of_scope'.*line 4"):
        load_examples(write(tmp_path, "i.yaml", content))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        # CSV
        pytest.param(
            "d.csv", 'text,label\n"two\nlines",a\nok,b\n,c\n', r"d\.csv:5: empty text", id="csv-multiline-line"
        ),
        pytest.param("bad.csv", "sentence,intent_name\nhi,greet\n", r":1: no 'text' column", id="csv-no-text"),
        pytest.param(
            "bad.csv", "text,other\nhi,greet\n", r":1: no 'label' \(or 'category'\) column", id="csv-no-label"
        ),
        pytest.param(
            "bad.csv", "text,label\nhi,greet\nhello,there,extra\n", r":3: 3 fields but the header has 2", id="csv-extra"
        ),
        pytest.param("bad.csv", "text,label\nhi,\n", r":2: empty label", id="csv-empty-label"),
        pytest.param("bad.csv", 'text,label\n"unterminated,greet\n', r"malformed CSV|fields", id="csv-unterminated"),
        pytest.param("d.csv", b"text,label\nok,a\ncaf\xe9,b\n", r"d\.csv:3: not UTF-8", id="csv-not-utf8"),
        pytest.param("d.csv", "text,label\n", "no examples", id="csv-header-only"),
        pytest.param(
            "d.csv",
            "text,label\nhi there,a\nother,b\nhi   there,c\n",
            r":4: 'hi there' is labelled 'c' here but 'a' at line 2",
            id="csv-same-text-two-labels",
        ),
        # JSONL
        pytest.param(
            "d.jsonl",
            '{"text": "hi", "label": "greet"}\n{"text": "oops"\n',
            r"d\.jsonl:2: invalid JSON",
            id="jsonl-bad",
        ),
        pytest.param("d.jsonl", '{"text": "hi"}\n', r"d\.jsonl:1: expected an object", id="jsonl-no-label"),
        pytest.param(
            "d.jsonl",
            '{"text": 3, "label": "x"}\n',
            r"d\.jsonl:1: 'text' and 'label' must be strings",
            id="jsonl-types",
        ),
        # intents YAML
        pytest.param("intents.yaml", "intents: [\n", r"intents\.yaml:2: invalid YAML", id="yaml-invalid"),
        pytest.param("intents.yaml", "- a\n- b\n", r":1: expected a mapping", id="yaml-list"),
        pytest.param(
            "intents.yaml", "faq: []\n", r":1: intents: missing \(required\); line 1: faq: unknown key", id="yaml-keys"
        ),
        pytest.param(
            "intents.yaml",
            "intents:\n  - name: a\n    examples: []\n",
            r":3: intents\[0\] \(a\)\.examples: no examples",
            id="yaml-no-examples",
        ),
        pytest.param(
            "intents.yaml",
            "intents:\n  - answer: x\n    examples: [q]\n",
            r":2: intents\[0\]\.name: missing \(required\)",
            id="yaml-no-name",
        ),
        pytest.param(
            "intents.yaml",
            "intents:\n  - name: a\n    examples: [q]\n  - name: a\n    examples: [r]\n",
            r":4: intents\[1\] \(a\)\.name: duplicate intent name 'a'.*first at line 2",
            id="yaml-duplicate-name",
        ),
        pytest.param(
            "intents.yaml",
            "intents:\n  - name: a\n    examples: [[nested]]\n",
            r":3: intents\[0\] \(a\)\.examples\[0\]: must be plain text",
            id="yaml-nested-example",
        ),
        pytest.param(
            "intents.yaml",
            "intents:\n  - name: out_of_scope\n    examples: [q]\n",
            r":2: intents\[0\] \(out_of_scope\)\.name: 'out_of_scope' is reserved",
            id="yaml-reserved-name",
        ),
        pytest.param(
            "intents.yaml",
            "intents:\n  - name: Reset-Password\n    examples: [q]\n",
            r":2: intents\[0\] \(Reset-Password\)\.name: .*snake_case",
            id="yaml-not-snake-case",
        ),
        pytest.param(
            "intents.yaml",
            "intents:\n  - name: a\n    examples: [Refund!]\n  - name: b\n    examples: [refund]\n",
            r":5: intents\[1\] \(b\)\.examples\[0\]: example 'refund' is listed under both 'a' and 'b'.*line 3",
            id="yaml-example-under-two-labels",
        ),
        pytest.param(
            "intents.yaml",
            "intents:\n  - name: a\n    examples: [q]\n    sources: [/etc/passwd]\n",
            r":4: .*relative to the knowledge",
            id="yaml-absolute-source",
        ),
        # any format
        *(pytest.param(name, "  \n", "empty", id=f"empty-{name}") for name in ("d.csv", "d.jsonl", "d.yaml")),
        pytest.param("d.txt", "hello", "unknown format", id="unknown-format"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_line_and_the_problem(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        load_examples(write(tmp_path, name, content))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_examples(tmp_path / "nope.csv")


def test_split_is_stratified_and_keeps_singletons_in_train() -> None:
    examples = labelled_examples({"big": 50, "small": 3, "two": 2, "single": 1})
    train, val = split(examples, 0.2, seed=1)
    assert sorted(train + val, key=examples.index) == examples
    val_counts = Counter(ex.label for ex in val)
    assert val_counts == {"big": 10, "small": 1, "two": 1}
    assert {ex.label for ex in train} == {"big", "small", "two", "single"}


def test_rare_labels_stay_whole_in_train_and_are_repeated_up_to_the_floor() -> None:
    examples = labelled_examples({"big": 50, "new": 3})
    train, val = split(examples, 0.2, seed=1, keep_below=8)
    assert Counter(ex.label for ex in val) == {"big": 10}  # the three corrections are all trained on
    boosted = repeat_rare(train, 8)
    assert Counter(ex.label for ex in boosted) == {"big": 40, "new": 8}
    news = [ex for ex in boosted if ex.label == "new"]
    assert Counter(ex.text for ex in news).most_common()[-1][1] == 2  # repeated in turn, each 2-3 times
    assert repeat_rare(train, 0) == train


def test_split_is_deterministic_per_seed() -> None:
    examples = labelled_examples({"a": 30, "b": 30})
    assert split(examples, 0.3, seed=7) == split(examples, 0.3, seed=7)
    assert split(examples, 0.3, seed=7)[1] != split(examples, 0.3, seed=8)[1]


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_bad_ratio(ratio: float) -> None:
    with pytest.raises(ValueError, match="val_ratio"):
        split(labelled_examples({"a": 5}), ratio)


def test_dataset_hash_ignores_order_but_not_content() -> None:
    examples = labelled_examples({"a": 3, "b": 2})
    assert dataset_hash(examples) == dataset_hash(list(reversed(examples)))
    relabelled = [*examples[:-1], Example(examples[-1].text, "a")]
    assert dataset_hash(examples) != dataset_hash(relabelled)
    assert dataset_hash(examples) != dataset_hash(examples[:-1])


def test_label_counts() -> None:
    assert label_counts(labelled_examples({"b": 2, "a": 1})) == {"a": 1, "b": 2}
