"""`supportbot kb`: build the knowledge-base index from a folder, search it, describe it."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import settings

if TYPE_CHECKING:
    from training.model import Encoder

SNIPPET_CHARS = 240

IndexOption = Annotated[
    Path | None,
    typer.Option("--index", "-i", metavar="DIR", help="Index directory [default: DATA_DIR/index]."),
]


def default_index_dir() -> Path:
    """Where `kb ingest` writes and `kb search`/`kb stats` read by default."""
    return settings().data_dir / "index"


@cache
def _load_encoder(name: str, threads: int | None, quantize: bool) -> Encoder:
    from training.model import Encoder

    return Encoder.load(name, threads=threads, quantize=quantize)


def _encoder() -> Encoder:
    """The base encoder from the settings (loaded once per process)."""
    current = settings()
    return _load_encoder(current.base_model_name, current.torch_threads or None, current.quantize)


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"


def register(app: typer.Typer) -> None:
    """Add the `kb` command group to the main app."""
    kb_app = typer.Typer(
        name="kb",
        help="The knowledge base: index a folder of articles and FAQs, search it, show what it holds.",
        no_args_is_help=True,
    )
    app.add_typer(kb_app, name="kb")

    @kb_app.command("ingest")
    def ingest(
        folder: Annotated[
            Path | None,
            typer.Argument(help="Folder of .md/.html/.txt articles and FAQ .csv files [default: KB_DIR]."),
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", metavar="DIR", help="Index directory [default: DATA_DIR/index].")
        ] = None,
    ) -> None:
        """Read FOLDER, chunk and embed every document, and save the index as a new version (atomic)."""
        from retrieval.index import KnowledgeIndex
        from retrieval.ingest import load_documents

        source = (folder or settings().kb_path).expanduser()
        target = (out or default_index_dir()).expanduser()
        started = time.perf_counter()
        documents = load_documents(source)
        if not documents:
            typer.secho(f"warning: no documents found in {source}; the index will be empty", fg="yellow", err=True)
        index = KnowledgeIndex.build(documents, _encoder())
        generation = index.save(target)
        stats = index.stats()
        typer.echo(
            f"indexed {stats.documents} documents ({stats.chunks} chunks, {stats.index_kind} index) from {source} "
            f"into {target} (version {generation}) in {time.perf_counter() - started:.1f}s"
        )

    @kb_app.command("search")
    def search(
        query: Annotated[str, typer.Argument(help="The question to look up.")],
        k: Annotated[int, typer.Option("-k", "--top", min=1, max=100, help="How many results.")] = 5,
        index_dir: IndexOption = None,
    ) -> None:
        """Show the passages of the knowledge base closest to QUERY, with their cosine scores."""
        from retrieval.index import KnowledgeIndex

        index = KnowledgeIndex.load(index_dir or default_index_dir())
        hits = index.search_text(query, _encoder(), k=k)
        if not hits:
            typer.echo("no results: the knowledge base is empty (add documents and run `supportbot kb ingest`).")
            return
        for rank, hit in enumerate(hits, 1):
            typer.echo(f"{rank}. {hit.score:.3f}  {hit.title}  [{hit.doc_id}]")
            typer.echo(f"   {_snippet(hit.text)}")
            if hit.url:
                typer.echo(f"   {hit.url}")

    @kb_app.command("stats")
    def stats(
        index_dir: IndexOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
    ) -> None:
        """Describe the index: documents by kind, chunks, index type, encoder, version, fingerprint."""
        from retrieval.index import KnowledgeIndex

        directory = (index_dir or default_index_dir()).expanduser()
        info = KnowledgeIndex.load(directory).stats()
        if as_json:
            typer.echo(json.dumps({"directory": str(directory), **info.to_dict()}, indent=2))
            return
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(info.documents_by_kind.items())) or "none"
        hnsw = " ".join(f"{key}={value}" for key, value in info.hnsw.items())
        for label, value in (
            ("index", f"{directory} (version {info.generation}, built {info.created_at})"),
            ("documents", f"{info.documents} ({kinds})"),
            ("chunks", f"{info.chunks} ({info.chunking})"),
            ("search", f"{info.index_kind} {hnsw}".rstrip() + f", exact below {info.approx_threshold} chunks"),
            ("encoder", f"{info.encoder_id} (dim {info.dim})"),
            ("fingerprint", info.fingerprint),
        ):
            typer.echo(f"{label:<12} {value}")
