"""Split documents into passages small enough to embed well: sections first, paragraphs, then sentences."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from retrieval.documents import Chunk, Document

MAX_WORDS = 120
OVERLAP_WORDS = 30
CHUNKER_VERSION = "1"
"""Bumped whenever chunking changes what is embedded, so the knowledge-base fingerprint changes too."""

FaqEmbedding = Literal["question", "question_answer"]
FAQ_EMBEDDING: FaqEmbedding = "question_answer"
"""What an FAQ row (or agent answer) embeds. Measured with `bench/bench_retrieval.py faq`: see bench/README.md."""

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=\S)")
_HEADING_END = re.compile(r"[.!?:;,]$")


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a slice of a very long one) and the separator that preceded it in the document."""

    text: str
    words: int
    sep: str
    heading: bool = False
    paragraph_start: bool = False


def _is_heading(paragraph: str) -> bool:
    return "\n" not in paragraph and len(paragraph.split()) <= 12 and not _HEADING_END.search(paragraph)


def _units(body: str, *, max_piece: int) -> list[_Unit]:
    units: list[_Unit] = []
    for paragraph in _PARAGRAPH_BREAK.split(body.strip()):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if _is_heading(paragraph):
            units.append(_Unit(paragraph, len(paragraph.split()), "\n\n", heading=True, paragraph_start=True))
            continue
        sep, first = "\n\n", True
        for line in paragraph.split("\n"):
            for sentence in _SENTENCE_END.split(line.strip()):
                words = sentence.split()
                for start in range(0, len(words), max_piece):
                    piece = words[start : start + max_piece]
                    units.append(_Unit(" ".join(piece), len(piece), sep, paragraph_start=first))
                    sep, first = " ", False
            sep = "\n"
    return units


def _join(units: list[_Unit]) -> str:
    return "".join((unit.sep if i else "") + unit.text for i, unit in enumerate(units))


def _tail(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The last whole sentences of `units` totalling at most `overlap` words (or the last words of one)."""
    tail: list[_Unit] = []
    total = 0
    for unit in reversed(units):
        if unit.heading:
            break
        if total + unit.words > overlap:
            if not tail and overlap > 0:
                words = unit.text.split()[-overlap:]
                tail.append(_Unit(" ".join(words), len(words), unit.sep))
            break
        tail.append(unit)
        total += unit.words
    return list(reversed(tail))


def _pack(units: list[_Unit], *, max_words: int, overlap: int) -> list[str]:
    chunks: list[str] = []
    current: list[_Unit] = []
    fresh = 0  # words in `current` that are not overlap carried from the previous chunk

    def words() -> int:
        return sum(unit.words for unit in current)

    def flush(*, carry: bool) -> None:
        nonlocal current, fresh
        if fresh:
            chunks.append(_join(current))
            current = _tail(current, overlap) if carry else []
        fresh = 0

    for i, unit in enumerate(units):
        if unit.heading:
            # a new section starts a new chunk, unless the current one is a short lead-in
            if fresh and words() >= max_words // 4:
                flush(carry=False)
            elif not fresh:
                current = []  # overlap from the previous section does not belong to this one
        elif unit.paragraph_start and fresh and words() >= (max_words * 3) // 5:
            # keep paragraphs whole when the chunk is already well filled and the paragraph would not fit
            paragraph = unit.words
            for nxt in units[i + 1 :]:
                if nxt.paragraph_start:
                    break
                paragraph += nxt.words
            if words() + paragraph > max_words:
                flush(carry=True)
        if words() + unit.words > max_words:
            flush(carry=True)
            while current and words() + unit.words > max_words:
                current.pop(0)
        current.append(unit)
        fresh += unit.words
    flush(carry=False)
    return chunks


def _check(max_words: int, overlap: int) -> None:
    if max_words < 10:
        raise ValueError(f"max_words must be at least 10, got {max_words}")
    if not 0 <= overlap <= max_words // 2:
        raise ValueError(f"overlap must be between 0 and max_words / 2 ({max_words // 2}), got {overlap}")


def chunk(
    document: Document,
    *,
    max_words: int = MAX_WORDS,
    overlap: int = OVERLAP_WORDS,
    faq_embedding: FaqEmbedding = FAQ_EMBEDDING,
) -> list[Chunk]:
    """Split `document` into passages of at most `max_words` words, consecutive ones sharing ~`overlap` words.

    Sections (headings) start new passages; within a section, paragraphs are kept whole when they fit and
    sentences are never cut unless a single sentence exceeds the limit. Overlap never crosses a heading.
    Every passage's `embed_text` starts with the document title. FAQ rows and agent answers are one passage
    each (question as title, answer as text); `faq_embedding` picks whether their answer is embedded too.

    Args:
        document: the document to split.
        max_words: most words per passage (title not counted).
        overlap: words of context repeated from the end of the previous passage of the same section.
        faq_embedding: `question_answer` (default, measured better) or `question`.

    Returns:
        At least one chunk; a document with an empty body yields one chunk holding its title.

    Example:
        >>> doc = Document(id="a.md", title="Refunds", text="Refunds take 5 days.", source="a.md")
        >>> [c.embed_text for c in chunk(doc)]
        ['Refunds\\nRefunds take 5 days.']
    """
    _check(max_words, overlap)
    title = document.title.strip()

    if document.kind in ("faq", "agent_answer"):
        answer = document.text.strip()
        embed = title if faq_embedding == "question" or not answer else f"{title}\n{answer}"
        return [Chunk(document.id, f"{document.id}::0", title, answer or title, document.url, embed)]

    texts = _pack(_units(document.text, max_piece=max_words - overlap), max_words=max_words, overlap=overlap)
    if not texts:
        texts = [title]
    return [
        Chunk(document.id, f"{document.id}::{n}", title, text, document.url, f"{title}\n{text}" if title else text)
        for n, text in enumerate(texts)
    ]


@dataclass(frozen=True)
class ChunkingConfig:
    """The chunking parameters an index was built with (recorded in its metadata and fingerprint)."""

    max_words: int = MAX_WORDS
    overlap: int = OVERLAP_WORDS
    faq_embedding: FaqEmbedding = FAQ_EMBEDDING

    def __post_init__(self) -> None:
        _check(self.max_words, self.overlap)

    def split(self, document: Document) -> list[Chunk]:
        """`chunk(document)` with these parameters."""
        return chunk(document, max_words=self.max_words, overlap=self.overlap, faq_embedding=self.faq_embedding)

    def tag(self) -> str:
        """One string naming the chunker version and parameters."""
        return f"chunker={CHUNKER_VERSION};max_words={self.max_words};overlap={self.overlap};faq={self.faq_embedding}"
