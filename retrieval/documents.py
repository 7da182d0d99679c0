"""The knowledge base's units: a `Document` (what was ingested) and a `Chunk` (what is embedded)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

DocumentKind = Literal["article", "faq", "agent_answer"]
DOCUMENT_KINDS: tuple[DocumentKind, ...] = ("article", "faq", "agent_answer")


@dataclass(frozen=True)
class Document:
    """One knowledge-base entry: an article, one FAQ row, or one answer written by an agent.

    Attributes:
        id: stable identifier: the file's path relative to the knowledge-base folder (`billing/refunds.md`),
            plus `#<row key>` for FAQ rows, or `agent/<key>` for agent answers.
        title: human-readable title, shown with search results and prepended to every embedded chunk.
        text: plain text body (markup removed); paragraphs separated by blank lines, a heading is a
            one-line paragraph.
        source: where it came from (relative file path, or `agent_answers`).
        url: link for users, if known.
        kind: `article`, `faq` or `agent_answer`.
        meta: extra JSON-serialisable details (e.g. the encoding a file was decoded with).
    """

    id: str
    title: str
    text: str
    source: str
    url: str | None = None
    kind: DocumentKind = "article"
    meta: dict[str, Any] = field(default_factory=dict)

    def content_hash(self) -> str:
        """sha256 of everything that affects what is embedded or shown (id, title, text, url, kind)."""
        payload = json.dumps([self.id, self.title, self.text, self.url, self.kind], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse of `from_dict`)."""
        return {
            "id": self.id,
            "title": self.title,
            "text": self.text,
            "source": self.source,
            "url": self.url,
            "kind": self.kind,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        """Rebuild a document from `to_dict` output."""
        kind = data.get("kind", "article")
        if kind not in DOCUMENT_KINDS:
            raise ValueError(f"unknown document kind {kind!r}")
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            text=str(data["text"]),
            source=str(data["source"]),
            url=data.get("url"),
            kind=kind,
            meta=dict(data.get("meta") or {}),
        )


@dataclass(frozen=True)
class Chunk:
    """A passage of a document, the unit that is embedded and searched.

    Attributes:
        doc_id: the `Document.id` it belongs to.
        chunk_id: `<doc_id>::<n>`, n counting from 0 in reading order.
        title: the document's title (shown with the hit).
        text: the passage itself (shown as the snippet).
        url: the document's URL.
        embed_text: what the encoder sees: the title followed by the passage (for FAQ rows, see `chunk`).
    """

    doc_id: str
    chunk_id: str
    title: str
    text: str
    url: str | None
    embed_text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (inverse of `from_dict`)."""
        return {
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "title": self.title,
            "text": self.text,
            "url": self.url,
            "embed_text": self.embed_text,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        """Rebuild a chunk from `to_dict` output."""
        return cls(
            doc_id=str(data["doc_id"]),
            chunk_id=str(data["chunk_id"]),
            title=str(data["title"]),
            text=str(data["text"]),
            url=data.get("url"),
            embed_text=str(data["embed_text"]),
        )


def documents_fingerprint(documents: Iterable[Document]) -> str:
    """Order-independent sha256 over the documents' ids and content hashes.

    Equal fingerprints mean the same knowledge base content, so the nightly job can skip a rebuild.
    """
    digest = hashlib.sha256()
    for doc_id, content in sorted((doc.id, doc.content_hash()) for doc in documents):
        digest.update(f"{doc_id}\0{content}\n".encode())
    return digest.hexdigest()
