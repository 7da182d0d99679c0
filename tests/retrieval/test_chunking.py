from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.chunking import ChunkingConfig, chunk
from retrieval.documents import Document


def sentences(prefix: str, count: int, words: int = 9) -> list[str]:
    """Distinct sentences `p0w1 ... p0w9.` so each word pins down where it came from."""
    return [" ".join(f"{prefix}{i}w{j}" for j in range(words)) + "." for i in range(count)]


def article(text: str, title: str = "Guide") -> Document:
    return Document(id="guide.md", title=title, text=text, source="guide.md")


def word_count(text: str) -> int:
    return len(text.split())


def test_short_document_is_one_chunk_with_its_title() -> None:
    [c] = chunk(article("Refunds take five days.", title="Refund policy"))
    assert (c.doc_id, c.chunk_id, c.title, c.text) == (
        "guide.md",
        "guide.md::0",
        "Refund policy",
        "Refunds take five days.",
    )
    assert c.embed_text == "Refund policy\nRefunds take five days."


def test_long_section_respects_max_words_and_overlaps() -> None:
    text = " ".join(sentences("s", 40))  # 360 words, one paragraph
    chunks = chunk(article(text), max_words=50, overlap=20)
    assert len(chunks) >= 8
    assert [c.chunk_id for c in chunks] == [f"guide.md::{i}" for i in range(len(chunks))]
    for c in chunks:
        assert word_count(c.text) <= 50
        assert c.embed_text == f"Guide\n{c.text}"
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        # the next chunk starts with the last whole sentences of the previous one, at most `overlap` words
        prev_sentences, next_sentences = (re.findall(r"[^.]+\.", c.text.replace(". ", ".")) for c in (prev, nxt))
        shared = [s for s in next_sentences if s in prev_sentences]
        assert shared == next_sentences[: len(shared)] == prev_sentences[-len(shared) :]
        assert 0 < word_count(" ".join(shared)) <= 20
    covered = " ".join(c.text for c in chunks)
    assert all(s in covered for s in sentences("s", 40))


def test_sentences_are_never_cut_when_they_fit() -> None:
    chunks = chunk(article(" ".join(sentences("s", 30))), max_words=40, overlap=10)
    for c in chunks:
        assert c.text.endswith(".")
        assert re.match(r"^s\d+w0 ", c.text)


def test_headings_start_new_chunks_without_overlap_across_them() -> None:
    text = "\n\n".join(
        ["Installing", " ".join(sentences("a", 5)), "Configuring", " ".join(sentences("b", 5)), "Removing", "Done."]
    )
    chunks = chunk(article("Read this first.\n\n" + text), max_words=60, overlap=15)
    starts = [c.text.split("\n")[0] for c in chunks]
    assert starts == ["Read this first.", "Configuring", "Removing"]  # a short lead-in stays with its section
    assert chunks[0].text.startswith("Read this first.\n\nInstalling\n\na0w0")
    assert not any(w.startswith("a") for w in chunks[1].text.split()[1:])  # no overlap across the heading
    assert chunks[2].text == "Removing\n\nDone."


def test_paragraphs_stay_whole_when_the_chunk_is_well_filled() -> None:
    paragraphs = [" ".join(sentences(p, 4)) for p in "abc"]  # 36 words each
    chunks = chunk(article("\n\n".join(paragraphs)), max_words=80, overlap=0)
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[:2]), paragraphs[2]]


def test_a_giant_sentence_is_split_by_words_with_overlap() -> None:
    words = [f"w{i}" for i in range(300)]
    chunks = chunk(article(" ".join(words)), max_words=100, overlap=20)
    assert all(word_count(c.text) <= 100 for c in chunks)
    assert chunks[0].text.split()[-20:] == chunks[1].text.split()[:20]
    assert set(" ".join(c.text for c in chunks).split()) == set(words)


def test_document_without_body_is_one_chunk_of_its_title() -> None:
    [c] = chunk(article("", title="Contact us"))
    assert (c.text, c.embed_text) == ("Contact us", "Contact us\nContact us")


def test_faq_row_is_one_chunk_and_embeds_question_and_answer_by_default() -> None:
    long_answer = " ".join(sentences("x", 30))
    faq = Document("faq.csv#q", "How do refunds work?", long_answer, "faq.csv", kind="faq")
    [c] = chunk(faq, max_words=50, overlap=10)
    assert (c.title, c.text, c.embed_text) == (faq.title, long_answer, f"{faq.title}\n{long_answer}")
    [q] = chunk(faq, faq_embedding="question")
    assert (q.text, q.embed_text) == (long_answer, "How do refunds work?")


@pytest.mark.parametrize(("max_words", "overlap"), [(5, 0), (100, 60), (100, -1)])
def test_invalid_parameters_are_refused(max_words: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="max_words|overlap"):
        chunk(article("x"), max_words=max_words, overlap=overlap)
    with pytest.raises(ValueError, match="max_words|overlap"):
        ChunkingConfig(max_words=max_words, overlap=overlap)


def test_config_tag_names_the_parameters() -> None:
    assert ChunkingConfig(max_words=80, overlap=10).tag() == "chunker=1;max_words=80;overlap=10;faq=question_answer"


paragraph = st.lists(
    st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=8), min_size=1, max_size=40).map(
        lambda ws: " ".join(ws) + "."
    ),
    min_size=1,
    max_size=6,
).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(
    paragraphs=st.lists(paragraph, min_size=1, max_size=8),
    max_words=st.integers(10, 80),
    overlap_share=st.floats(0, 0.5),
)
def test_every_word_lands_in_a_chunk_within_the_limit(
    paragraphs: list[str], max_words: int, overlap_share: float
) -> None:
    overlap = int(max_words * overlap_share) if max_words // 2 >= int(max_words * overlap_share) else 0
    text = "\n\n".join(paragraphs)
    chunks = chunk(article(text), max_words=max_words, overlap=overlap)
    assert all(0 < word_count(c.text) <= max_words for c in chunks)
    assert [w for c in chunks for w in c.text.split()][: len(text.split())] != []
    assert set(text.split()) == {w for c in chunks for w in c.text.split()}
