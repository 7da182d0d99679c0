from __future__ import annotations

import logging
from pathlib import Path

import pytest

from retrieval.documents import Document
from retrieval.errors import KnowledgeBaseError
from retrieval.ingest import AgentAnswer, decode, documents_from_records, load_documents


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def by_id(root: Path) -> dict[str, Document]:
    return {d.id: d for d in load_documents(root)}


MARKDOWN = """---
title: Reset your password
url: https://help.example.com/reset
---
Intro with **bold**, _emphasis_, `code` and a [link](https://x.example). snake_case_word stays.

## Steps

1. Open **Settings**.
2. Click *Forgot password*.

| Plan | Price |
|------|-------|
| Pro  | 10    |

```bash
supportbot kb ingest
```

> Tip: ![screenshot of the form](form.png) shows where.
<!-- internal note -->
"""


def test_markdown_front_matter_and_syntax_stripped(tmp_path: Path) -> None:
    write(tmp_path, "reset.md", MARKDOWN)
    [doc] = load_documents(tmp_path)
    assert (doc.id, doc.title, doc.url, doc.kind, doc.source) == (
        "reset.md",
        "Reset your password",
        "https://help.example.com/reset",
        "article",
        "reset.md",
    )
    for marker in ("**", "](", "```", "## ", "|", "<!--", "internal note", "1. ", "> "):
        assert marker not in doc.text
    assert "Intro with bold, emphasis, code and a link. snake_case_word stays." in doc.text
    assert "Steps\n\nOpen Settings.\nClick Forgot password." in doc.text
    assert "Plan Price\nPro 10" in doc.text
    assert "supportbot kb ingest" in doc.text
    assert "Tip: screenshot of the form shows where." in doc.text


def test_markdown_title_from_first_h1_which_leaves_the_body(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "Lead line.\n\n# Refund policy\n\nRefunds take 5 days.\n\n# Second H1\n\nMore.")
    [doc] = load_documents(tmp_path)
    assert doc.title == "Refund policy"
    assert doc.text == "Lead line.\n\nRefunds take 5 days.\n\nSecond H1\n\nMore."


def test_markdown_without_title_uses_the_file_name(tmp_path: Path) -> None:
    write(tmp_path, "two-factor_setup.md", "Just text.")
    assert load_documents(tmp_path)[0].title == "Two factor setup"


def test_html_drops_boilerplate_and_keeps_structure(tmp_path: Path) -> None:
    write(
        tmp_path,
        "help/refunds.html",
        """<html><head><title>Refunds | Acme Help</title><style>p {color: red}</style>
        <link rel="canonical" href="https://help.acme.test/refunds"></head>
        <body><nav>Home | Pricing</nav><script>track()</script>
        <h1>Refund policy</h1><p>You can get a <a href="/r">refund</a> within <b>30 days</b>.</p>
        <ul><li>Cards: 5 days</li><li>PayPal: 1 day</li></ul>
        <h2>Exceptions</h2><p>Gift cards<br>are final.</p><footer>(c) Acme</footer></body></html>""",
    )
    [doc] = load_documents(tmp_path)
    assert (doc.id, doc.title, doc.url) == ("help/refunds.html", "Refund policy", "https://help.acme.test/refunds")
    assert doc.text == (
        "You can get a refund within 30 days.\n\nCards: 5 days\nPayPal: 1 day\n\nExceptions\n\nGift cards\nare final."
    )


def test_html_title_falls_back_to_title_tag(tmp_path: Path) -> None:
    write(tmp_path, "page.htm", "<html><head><title>Opening hours</title></head><body><p>9 to 5.</p></body></html>")
    [doc] = load_documents(tmp_path)
    assert (doc.title, doc.text) == ("Opening hours", "9 to 5.")


def test_text_file_title_from_first_line(tmp_path: Path) -> None:
    write(tmp_path, "hours.txt", "Opening hours\n\nWe are open 9 to 5.\nClosed on Sundays.\n")
    write(tmp_path, "notes.txt", "no title line here\nstill the body\n")
    docs = by_id(tmp_path)
    hours, notes = docs["hours.txt"], docs["notes.txt"]
    assert (hours.title, hours.text) == ("Opening hours", "We are open 9 to 5.\nClosed on Sundays.")
    assert (notes.title, notes.text) == ("Notes", "no title line here\nstill the body")


def test_faq_csv_one_document_per_row(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(
        tmp_path,
        "faq/billing.csv",
        "Question,Answer,URL\n"
        '"How do I get a refund?","Ask within 30 days, we pay back in 5 days.",https://x.test/r\n'
        "Where is my invoice?,In the billing tab.,\n"
        "Where is my invoice?,Also e-mailed monthly.,\n"
        "Orphan question without answer,,\n",
    )
    with caplog.at_level(logging.WARNING):
        docs = load_documents(tmp_path)
    assert [d.id for d in docs] == [
        "faq/billing.csv#how-do-i-get-a-refund",
        "faq/billing.csv#where-is-my-invoice",
        "faq/billing.csv#where-is-my-invoice-2",
    ]
    first = docs[0]
    assert (first.title, first.text, first.url, first.kind, first.source) == (
        "How do I get a refund?",
        "Ask within 30 days, we pay back in 5 days.",
        "https://x.test/r",
        "faq",
        "faq/billing.csv",
    )
    assert docs[1].url is None
    assert "line 5" in caplog.text


def test_faq_id_column_gives_the_row_key(tmp_path: Path) -> None:
    write(tmp_path, "faq.csv", "id,question,answer\nREF-1,How long do refunds take?,Five days.\n")
    assert load_documents(tmp_path)[0].id == "faq.csv#ref-1"


def test_csv_without_question_answer_header_is_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "prices.csv", "plan,price\npro,10\n")
    with pytest.raises(KnowledgeBaseError, match=r"prices\.csv.*question,answer"):
        load_documents(tmp_path)


def test_non_utf8_file_is_decoded_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "legacy.txt", "Café opening – naïve “quotes”\n\nWe serve crème brûlée.".encode("cp1252"))
    write(tmp_path, "bom.md", "\ufeff# Über uns\n\nGrüße.".encode())
    with caplog.at_level(logging.WARNING):
        docs = by_id(tmp_path)
    legacy = docs["legacy.txt"]
    assert legacy.title == "Café opening – naïve “quotes”"
    assert legacy.text == "We serve crème brûlée."
    assert legacy.meta["encoding"] == "cp1252"
    assert "legacy.txt is not valid UTF-8" in caplog.text
    assert (docs["bom.md"].title, docs["bom.md"].meta["encoding"]) == ("Über uns", "utf-8")


def test_decode_falls_back_to_latin1_for_bytes_cp1252_lacks() -> None:
    assert decode(b"caf\xe9 \x81", name="x") == ("caf\xe9 \x81", "latin-1")


def test_empty_and_hidden_files_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "empty.md", "")
    write(tmp_path, "blank.txt", "  \n\n \t\n")
    write(tmp_path, ".draft.md", "# Draft\n\nsecret")
    write(tmp_path, ".git/notes.md", "# Git\n\ninternal")
    write(tmp_path, "~backup.md", "# Backup")
    write(tmp_path, "image.png", b"\x89PNG\r\n")
    write(tmp_path, "real.md", "# Real\n\nbody")
    with caplog.at_level(logging.WARNING):
        docs = load_documents(tmp_path)
    assert [d.id for d in docs] == ["real.md"]
    assert "skipping empty file empty.md" in caplog.text
    assert "skipping empty file blank.txt" in caplog.text


def test_empty_folder_gives_no_documents(tmp_path: Path) -> None:
    assert load_documents(tmp_path) == []


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KnowledgeBaseError, match="does not exist.*KB_DIR"):
        load_documents(tmp_path / "nope")


def test_nested_folders_give_stable_relative_ids(tmp_path: Path) -> None:
    write(tmp_path, "b/deep/er/c.md", "# C\n\nc")
    write(tmp_path, "a.txt", "a")
    write(tmp_path, "b/b.html", "<h1>B</h1><p>b</p>")
    first = load_documents(tmp_path)
    assert [d.id for d in first] == ["a.txt", "b/b.html", "b/deep/er/c.md"]
    assert load_documents(tmp_path) == first


def test_documents_from_records() -> None:
    docs = documents_from_records(
        [
            AgentAnswer("7", "Can I pay by invoice?", "Yes, on the Business plan.", url="https://slack.test/t/7"),
            AgentAnswer("8", "  ", "ignored: no question"),
            AgentAnswer("7", "Can I pay by invoice?", "Yes, on Business and Enterprise."),
        ]
    )
    assert len(docs) == 1
    doc = docs[0]
    assert (doc.id, doc.kind, doc.title, doc.text, doc.source) == (
        "agent/7",
        "agent_answer",
        "Can I pay by invoice?",
        "Yes, on Business and Enterprise.",
        "agent_answers",
    )


def test_markdown_setext_headings(tmp_path: Path) -> None:
    write(tmp_path, "s.md", "Billing FAQ\n===========\n\nIntro.\n\nPayments\n--------\n\nWe take cards.\n\n---\n\nEnd.")
    [doc] = load_documents(tmp_path)
    assert doc.title == "Billing FAQ"
    assert doc.text == "Intro.\n\nPayments\n\nWe take cards.\n\nEnd."


@pytest.mark.parametrize(
    ("markdown", "body"),
    [
        ("a &amp; b &lt;tag&gt; &copy;", "a & b <tag> ©"),  # entities are decoded
        ("Term | Def\n--- | ---\nx | y\n\nafter", "Term Def\nx y\n\nafter"),  # a table without outer pipes
        ("Run `a | b` in `models/<version>/`.", "Run a | b in models/<version>/."),  # code spans kept whole
        ("Intro:\n- a\n- b\n\n1. loose\n\n2. list", "Intro:\na\nb\n\nloose\n\nlist"),  # list shapes follow the source
        ("<div class='note'>\n<b>Note:</b> careful\n</div>\n\nText", "Note: careful\n\nText"),  # HTML blocks: text
        ("---\ntitle: Dots\n...\nBody", "Body"),  # front matter closed by `...`
    ],
)
def test_markdown_bodies(tmp_path: Path, markdown: str, body: str) -> None:
    write(tmp_path, "m.md", markdown)
    [doc] = load_documents(tmp_path)
    assert doc.text == body


def test_unreadable_front_matter_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "m.md", "---\ntitle: [unclosed\n---\n# Real title\n\nBody")
    with caplog.at_level(logging.WARNING):
        [doc] = load_documents(tmp_path)
    assert (doc.title, doc.text) == ("Real title", "Body")
    assert "ignoring unreadable front matter" in caplog.text
