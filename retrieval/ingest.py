"""Read a knowledge-base folder (Markdown, HTML, text, FAQ CSV) and agent answers into `Document`s.

Encoding policy: files are read as UTF-8 (with or without BOM); a file that is not valid UTF-8 is decoded as
Windows-1252, else Latin-1 (which accepts any bytes), with a warning naming the file, so one legacy file never
stops an ingest. The encoding used is kept in `Document.meta["encoding"]`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from retrieval.chunking import chunk
from retrieval.documents import Document
from retrieval.errors import KnowledgeBaseError
from retrieval.formats import Parsed, parse_html, parse_markdown, parse_text, tidy

__all__ = ["SUPPORTED_SUFFIXES", "AgentAnswer", "chunk", "decode", "documents_from_records", "load_documents"]

logger = logging.getLogger(__name__)

_ARTICLE_PARSERS = {
    ".md": parse_markdown,
    ".markdown": parse_markdown,
    ".html": parse_html,
    ".htm": parse_html,
    ".txt": parse_text,
}
SUPPORTED_SUFFIXES: tuple[str, ...] = (*_ARTICLE_PARSERS, ".csv")
AGENT_ANSWERS_SOURCE = "agent_answers"


@dataclass(frozen=True)
class AgentAnswer:
    """An answer written or corrected by an agent, to be searchable like an FAQ row.

    Attributes:
        key: stable identifier (e.g. the answer's database id); the document id is `agent/<key>`.
        question: the customer's question (PII-masked).
        answer: the agent's answer.
        url: optional link (e.g. the Slack thread).
    """

    key: str
    question: str
    answer: str
    url: str | None = None


def decode(data: bytes, *, name: str) -> tuple[str, str]:
    """Decode file bytes as UTF-8 (BOM tolerated), else cp1252, else latin-1; return (text, encoding)."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        logger.warning("%s is not valid UTF-8; read it as %s (save it as UTF-8 to silence this)", name, encoding)
        return text, encoding
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _title_from_name(path: Path) -> str:
    words = re.sub(r"[-_]+", " ", path.stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


def _slug(text: str, *, limit: int = 60) -> str:
    slug = re.sub(r"[^\w]+", "-", text.lower(), flags=re.UNICODE).strip("-")
    return slug[:limit].rstrip("-") or "row"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KnowledgeBaseError(f"cannot read knowledge-base file {path}: {exc.strerror or exc}") from exc


def _article(path: Path, rel: str, text: str, encoding: str) -> Document | None:
    parsed: Parsed = _ARTICLE_PARSERS[path.suffix.lower()](text)
    if not parsed.body and not parsed.title:
        logger.warning("skipping %s: no text left after removing markup", rel)
        return None
    return Document(
        id=rel,
        title=parsed.title or _title_from_name(path),
        text=parsed.body,
        source=rel,
        url=parsed.url,
        kind="article",
        meta={"encoding": encoding},
    )


def _faq(path: Path, rel: str, text: str, encoding: str) -> list[Document]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
    if "question" not in header or "answer" not in header:
        raise KnowledgeBaseError(
            f"{rel}: an FAQ CSV needs a header row with `question,answer` columns (optional: `url`, `id`); "
            f"found {list(header) or 'no header'}. Fix the header, or move the file out of the knowledge-base folder"
        )
    documents: list[Document] = []
    seen: set[str] = set()
    try:
        for row in reader:
            line = reader.line_num

            def cell(column: str, row: dict[str, str | None] = row) -> str:
                key = header.get(column)
                return (row.get(key) or "").strip() if key else ""

            question, answer = cell("question"), cell("answer")
            if not question or not answer:
                if question or answer:
                    logger.warning("%s line %d: skipping a row without both a question and an answer", rel, line)
                continue
            key = _slug(cell("id") or question)
            unique, n = key, 2
            while unique in seen:
                unique, n = f"{key}-{n}", n + 1
            seen.add(unique)
            documents.append(
                Document(
                    id=f"{rel}#{unique}",
                    title=" ".join(question.split()),
                    text=tidy(answer),
                    source=rel,
                    url=cell("url") or None,
                    kind="faq",
                    meta={"encoding": encoding, "line": line},
                )
            )
    except csv.Error as exc:
        raise KnowledgeBaseError(f"{rel} line {reader.line_num}: malformed CSV ({exc}); fix the quoting") from exc
    if not documents:
        logger.warning("skipping %s: no rows with both a question and an answer", rel)
    return documents


def _files(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith((".", "~")):
                continue
            path = Path(directory) / name
            if path.suffix.lower() in SUPPORTED_SUFFIXES and path.is_file():
                found.append(path)
            else:
                logger.debug("ignoring %s (not a supported knowledge-base file)", path)
    return found


def load_documents(folder: str | os.PathLike[str]) -> list[Document]:
    """Read every supported file under `folder` (recursively) into documents.

    Markdown (`.md`), HTML (`.html`, `.htm`) and text (`.txt`) files are one article each; each row of an FAQ
    CSV (`question,answer[,url][,id]` header) is one `faq` document titled by its question. Document ids are
    the POSIX path relative to `folder` (plus `#<row key>` for FAQ rows, the key being the slugified `id` or
    question), so they survive re-ingestion. Hidden files and folders (`.x`) and editor backups (`~x`) are
    skipped; so are empty files (with a warning). Other file types are ignored.

    Args:
        folder: the knowledge-base folder.

    Returns:
        Documents sorted by path (rows in file order). An empty folder gives an empty list.

    Raises:
        KnowledgeBaseError: the folder does not exist, a file cannot be read, or an FAQ CSV has no
            `question,answer` header.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise KnowledgeBaseError(
            f"knowledge-base folder {root} does not exist or is not a folder: create it with your articles "
            "(.md, .html, .txt, FAQ .csv) or point KB_DIR at it"
        )
    documents: list[Document] = []
    for path in _files(root):
        rel = path.relative_to(root).as_posix()
        data = _read(path)
        if not data.strip():
            logger.warning("skipping empty file %s", rel)
            continue
        text, encoding = decode(data, name=rel)
        if path.suffix.lower() == ".csv":
            documents.extend(_faq(path, rel, text, encoding))
        else:
            document = _article(path, rel, text, encoding)
            if document is not None:
                documents.append(document)
    logger.info("read %d documents from %s", len(documents), root)
    return documents


def documents_from_records(records: Iterable[AgentAnswer]) -> list[Document]:
    """Turn agent-written answers into `agent_answer` documents (question as title, answer as text).

    Records with an empty question or answer are skipped; when a key repeats, the last record wins.

    Example:
        >>> [d.id for d in documents_from_records([AgentAnswer("42", "Can I pay by invoice?", "Yes, ...")])]
        ['agent/42']
    """
    by_id: dict[str, Document] = {}
    for record in records:
        question, answer = " ".join(record.question.split()), tidy(record.answer)
        if not question or not answer:
            logger.warning("skipping agent answer %s: empty question or answer", record.key)
            continue
        doc_id = f"agent/{record.key}"
        by_id[doc_id] = Document(
            id=doc_id,
            title=question,
            text=answer,
            source=AGENT_ANSWERS_SOURCE,
            url=record.url,
            kind="agent_answer",
        )
    return list(by_id.values())
