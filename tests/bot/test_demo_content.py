"""The demo content the product ships with: intents, held-out test set and knowledge base."""

from __future__ import annotations

import csv
import re
import string
from collections import Counter
from pathlib import Path

import pytest

from bot.catalog import IntentCatalog
from bot.settings import DEMO_DIR

INTENTS = DEMO_DIR / "intents.yaml"
TEST_CSV = DEMO_DIR / "test.csv"
KB = DEMO_DIR / "kb"
OUT_OF_SCOPE = "out_of_scope"
MAX_KB_BYTES = 8 * 1024
KB_FOLDERS = {"accounts", "billing", "sharing", "sync", "security", "admin", "integrations"}
_PUNCTUATION = str.maketrans("", "", string.punctuation + "’‘“”")


def norm(text: str) -> str:
    """Lowercase, strip punctuation, collapse whitespace."""
    return " ".join(text.lower().translate(_PUNCTUATION).split())


@pytest.fixture(scope="module")
def catalog() -> IntentCatalog:
    return IntentCatalog.load(INTENTS)


@pytest.fixture(scope="module")
def test_rows() -> list[dict[str, str]]:
    with TEST_CSV.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["text", "label"]
        return list(reader)


def kb_files(*suffixes: str) -> list[Path]:
    return sorted(path for path in KB.rglob("*") if path.is_file() and path.suffix in suffixes)


# --- intents.yaml -----------------------------------------------------------------------------


def test_catalog_size(catalog: IntentCatalog) -> None:
    assert catalog.company == "Nimbus"
    assert len(catalog) >= 25
    thin = {intent.name: len(intent.examples) for intent in catalog if len(intent.examples) < 15}
    assert not thin, f"intents with fewer than 15 examples: {thin}"
    assert len(catalog.out_of_scope_examples) >= 40


def test_examples_are_varied(catalog: IntentCatalog) -> None:
    for intent in catalog:
        lengths = [len(text.split()) for text in intent.examples]
        assert min(lengths) <= 3, f"{intent.name}: add a very short example"
        assert max(lengths) >= 7, f"{intent.name}: add a longer example"
        lowercase_starts = sum(text[0].islower() for text in intent.examples)
        assert 0 < lowercase_starts < len(intent.examples), f"{intent.name}: mix casual and formal phrasings"


def test_no_example_repeated_within_or_across_labels(catalog: IntentCatalog) -> None:
    labelled = [(intent.name, text) for intent in catalog for text in intent.examples]
    labelled += [(OUT_OF_SCOPE, text) for text in catalog.out_of_scope_examples]
    counts = Counter(norm(text) for _, text in labelled)
    repeated = {text: n for text, n in counts.items() if n > 1}
    assert not repeated, f"examples listed more than once: {repeated}"


def test_answers_are_curated(catalog: IntentCatalog) -> None:
    for intent in catalog:
        answer = catalog.answer_for(intent.name)
        assert answer is not None
        assert 150 <= len(answer) <= 700, f"{intent.name}: answer should be 2-5 sentences"
        assert "TODO" not in answer and "lorem" not in answer.lower()
        assert intent.description, f"{intent.name}: add a description"


def test_sources_exist(catalog: IntentCatalog) -> None:
    assert catalog.missing_sources(KB) == []
    assert all(catalog.sources_for(name) for name in catalog.intents), "every demo intent cites a KB article"


def test_kb_has_topics_no_intent_covers(catalog: IntentCatalog) -> None:
    cited = {source for name in catalog.intents for source in catalog.sources_for(name)}
    articles = {path.relative_to(KB).as_posix() for path in kb_files(".md", ".html")}
    uncited = articles - cited
    assert len(uncited) >= 5, f"retrieval needs articles the classifier can't answer; only {sorted(uncited)}"
    for topic in ("files/version-history.md", "files/preview-file-types.html", "integrations/api-rate-limits.md"):
        assert topic in uncited


# --- test.csv ---------------------------------------------------------------------------------


def test_test_set_labels_and_counts(catalog: IntentCatalog, test_rows: list[dict[str, str]]) -> None:
    labels = Counter(row["label"] for row in test_rows)
    unknown = set(labels) - set(catalog.intents) - {OUT_OF_SCOPE}
    assert not unknown, f"test.csv labels not in intents.yaml: {unknown}"
    short = {name: labels[name] for name in catalog.intents if labels[name] < 5}
    assert not short, f"intents with fewer than 5 test questions: {short}"
    assert labels[OUT_OF_SCOPE] >= 40
    assert all(row["text"].strip() for row in test_rows)


def test_test_set_is_held_out(catalog: IntentCatalog, test_rows: list[dict[str, str]]) -> None:
    training = {norm(text) for intent in catalog for text in intent.examples}
    training |= {norm(text) for text in catalog.out_of_scope_examples}
    leaked = [row["text"] for row in test_rows if norm(row["text"]) in training]
    assert not leaked, f"test questions copied from the training examples: {leaked}"
    counts = Counter(norm(row["text"]) for row in test_rows)
    assert not [text for text, n in counts.items() if n > 1], "test.csv repeats a question"


# --- knowledge base ---------------------------------------------------------------------------


def test_kb_layout_and_sizes() -> None:
    files = [path for path in KB.rglob("*") if path.is_file()]
    assert len(kb_files(".md")) >= 20
    assert len(kb_files(".html")) >= 2
    assert len(kb_files(".csv")) >= 1
    assert KB_FOLDERS.issubset(path.parent.name for path in files)
    too_big = [str(path) for path in files if path.stat().st_size >= MAX_KB_BYTES]
    assert not too_big, f"KB files must stay under 8 kB: {too_big}"
    for path in files:
        path.read_text(encoding="utf-8")  # every file is UTF-8


@pytest.mark.parametrize("path", kb_files(".md"), ids=lambda p: p.relative_to(KB).as_posix())
def test_markdown_article_has_title_and_body(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and len(lines[0]) > 4, "first line must be '# Title'"
    assert sum(len(line) for line in lines[1:]) >= 800, "article body is too thin"


@pytest.mark.parametrize("path", kb_files(".html"), ids=lambda p: p.relative_to(KB).as_posix())
def test_html_article_has_title(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    title = re.search(r"<title>(.+?)</title>", text)
    heading = re.search(r"<h1>(.+?)</h1>", text)
    assert title and heading and title.group(1) == heading.group(1)


def test_faq_csv_files() -> None:
    rows = 0
    for path in kb_files(".csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == ["question", "answer"], path
            for row in reader:
                assert row["question"].strip().endswith("?") and row["answer"].strip(), (path, row)
                rows += 1
    assert rows >= 15


def test_kb_cross_references_exist() -> None:
    folders = "|".join(sorted({path.parent.name for path in kb_files(".md", ".html", ".csv")}))
    reference = re.compile(rf"\b((?:{folders})/[\w-]+\.(?:md|html|csv))\b")
    broken = [
        (path.relative_to(KB).as_posix(), ref)
        for path in kb_files(".md", ".html", ".csv")
        for ref in reference.findall(path.read_text(encoding="utf-8"))
        if not (KB / ref).is_file()
    ]
    assert not broken


def test_only_fictional_web_addresses() -> None:
    texts = [INTENTS.read_text(encoding="utf-8"), TEST_CSV.read_text(encoding="utf-8")]
    texts += [path.read_text(encoding="utf-8") for path in KB.rglob("*") if path.is_file()]
    hosts = {host for text in texts for host in re.findall(r"https?://([\w.-]+)", text)}
    hosts |= {host for text in texts for host in re.findall(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)", text)}
    assert hosts
    real = sorted(host for host in hosts if not host.rstrip(".").endswith(".example"))
    assert not real, f"use the reserved .example domain, not real ones: {real}"
