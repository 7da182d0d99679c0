"""Crash-safe, versioned directories: each save is a new generation, published by one atomic rename.

Layout of an index directory::

    CURRENT              the published generation number (replaced atomically with os.replace)
    versions/000007/     one complete generation (files written, fsynced, then renamed into place)
    versions/.tmp-...    a generation being written (or left by a crash; removed by the next save)
    .lock                held while saving, so two writers never interleave

A crash at any point leaves `CURRENT` naming a complete generation: the new one is only published after
all its files are durably on disk, and the previous generations are kept (the last `keep` ones).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from retrieval.errors import KnowledgeBaseError

CURRENT = "CURRENT"
VERSIONS = "versions"
KEEP_GENERATIONS = 3
_GENERATION = re.compile(r"^\d{6,}$")
_LOCK_TIMEOUT_S = 600.0


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    """Flush a file's or a directory's content and metadata to disk."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def generation_dir(root: Path, generation: int) -> Path:
    """Directory of one generation."""
    return root / VERSIONS / f"{generation:06d}"


def generations(root: Path) -> list[int]:
    """Complete generations present on disk (published or not), ascending."""
    versions = root / VERSIONS
    if not versions.is_dir():
        return []
    return sorted(int(p.name) for p in versions.iterdir() if p.is_dir() and _GENERATION.match(p.name))


def current_generation(root: Path) -> int | None:
    """The published generation, or None when nothing was ever published in `root`.

    Raises:
        KnowledgeBaseError: `CURRENT` exists but does not hold a generation number.
    """
    pointer = root / CURRENT
    try:
        text = pointer.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeBaseError(f"cannot read {pointer} ({exc}): rebuild it with `supportbot kb ingest`") from exc
    if not text.isdigit():
        raise KnowledgeBaseError(
            f"{pointer} should hold a generation number but holds {text[:40]!r}: rebuild the index with "
            "`supportbot kb ingest`"
        )
    return int(text)


def _publish(root: Path, generation: int) -> None:
    """Point CURRENT at `generation` atomically (write a temp file, fsync it, os.replace, fsync the dir)."""
    temp = root / f".{CURRENT}.{uuid.uuid4().hex}"
    with temp.open("w", encoding="ascii") as handle:
        handle.write(f"{generation}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, root / CURRENT)
    fsync_path(root)


def _prune(root: Path, keep: int) -> None:
    versions = root / VERSIONS
    for leftover in versions.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    current = current_generation(root)
    published = [g for g in generations(root) if current is None or g <= current]
    for generation in published[:-keep]:
        shutil.rmtree(generation_dir(root, generation), ignore_errors=True)


def write_generation(root: Path, write: Callable[[Path], None], *, keep: int = KEEP_GENERATIONS) -> int:
    """Write a new generation with `write(directory)` and publish it atomically.

    `write` fills an empty temporary directory; every file in it is then fsynced, the directory is renamed
    to `versions/<generation>` and `CURRENT` is switched to it. If `write` (or anything before the switch)
    raises, the previous generation stays published and the exception propagates.

    Args:
        root: the index directory (created if missing).
        write: fills the given directory with the generation's files.
        keep: published generations to keep (the newest ones, including this one).

    Returns:
        The new generation number.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    try:
        (root / VERSIONS).mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(root / ".lock"), timeout=_LOCK_TIMEOUT_S)
        lock.acquire()
    except Timeout as exc:
        raise KnowledgeBaseError(f"another process has been saving to {root} for {_LOCK_TIMEOUT_S:.0f}s") from exc
    except OSError as exc:
        raise KnowledgeBaseError(f"cannot write the index to {root}: {exc}") from exc
    try:
        existing = [*generations(root), current_generation(root) or 0]
        generation = max(existing) + 1
        temp = root / VERSIONS / f".tmp-{generation:06d}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            write(temp)
            for path in temp.iterdir():
                fsync_path(path)
            fsync_path(temp)
            os.rename(temp, generation_dir(root, generation))
            fsync_path(root / VERSIONS)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        _publish(root, generation)
        _prune(root, keep)
        return generation
    except OSError as exc:
        raise KnowledgeBaseError(f"cannot write the index to {root}: {exc}; the previous version is kept") from exc
    finally:
        lock.release()
