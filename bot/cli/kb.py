"""`supportbot kb`: index the knowledge base as a new production version, search it, describe it.

The bot searches the index inside the production version's directory (built with that version's encoder), so
these commands work on versions: `ingest` re-indexes KB_DIR (plus agent-written answers) with the production
model as a new version and promotes it; `search` and `stats` read the production version (or `--version`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import settings
from storage.errors import StorageError

if TYPE_CHECKING:
    from bot.versions import LoadedVersion

SNIPPET_CHARS = 240

VersionOption = Annotated[
    str | None, typer.Option("--version", metavar="VERSION", help="A registered version.", show_default="production")
]


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"


def _load(version: str | None) -> tuple[str, Path, LoadedVersion]:
    """(version, directory, loaded version) of `version` or of production."""
    from bot.knowledge import registered
    from bot.versions import load_version
    from storage.repository import Repository
    from training.locations import located

    current = settings()
    with Repository(current.db_url, mask_pii=current.pii_masking) as repo:
        record = registered(repo, version)
    path = located(record, current.models_dir)
    return record.version, path, load_version(path, threads=current.torch_threads or None)


def register(app: typer.Typer) -> None:
    """Add the `kb` command group to the main app."""
    kb_app = typer.Typer(
        name="kb",
        help="The knowledge base: index KB_DIR as a new version, search what the bot cites, show what it holds.",
        no_args_is_help=True,
    )
    app.add_typer(kb_app, name="kb")

    @kb_app.command("ingest")
    def ingest() -> None:
        """Index KB_DIR (articles, FAQ CSVs) and the agents' answers with the production model as a new version,
        and promote it."""
        from bot.knowledge import reindex
        from bot.retrain import RetrainError

        try:
            current = settings()
            record = reindex(current, echo=lambda line: typer.echo(line, err=True))
        except RetrainError as exc:
            raise StorageError(str(exc)) from None
        metrics = record.metrics or {}
        typer.echo(
            f"promoted {record.version} ({metrics.get('kb_documents', 0)} documents, the model of "
            f"{metrics.get('derived_from')}); running bots switch to it within {current.reload_interval_s:g} s"
        )

    @kb_app.command("rebuild")
    def rebuild_command(
        version: Annotated[str | None, typer.Argument(help="The version to repair.", show_default="production")] = None,
    ) -> None:
        """Rebuild a version's index in place with its own encoder (from KB_DIR and the agents' answers): the
        repair for a missing or corrupt index. Running bots load it with the version (restart to reload it now)."""
        from bot.knowledge import rebuild
        from bot.retrain import RetrainError

        try:
            record = rebuild(settings(), version, echo=lambda line: typer.echo(line, err=True))
        except RetrainError as exc:
            raise StorageError(str(exc)) from None
        typer.echo(f"rebuilt the index of {record.version}")

    @kb_app.command("search")
    def search(
        query: Annotated[str, typer.Argument(help="The question to look up.")],
        k: Annotated[int, typer.Option("-k", "--top", min=1, max=100, help="How many results.")] = 5,
        version: VersionOption = None,
    ) -> None:
        """Show the passages closest to QUERY in a version's index, with their cosine scores."""
        name, _, loaded = _load(version)
        hits = loaded.kb.search_text(query, loaded.model, k=k)
        if not hits:
            typer.echo(
                f"no results: the knowledge base of {name} is empty: add documents to KB_DIR "
                f"({settings().kb_path}), then `supportbot kb ingest`."
            )
            return
        for rank, hit in enumerate(hits, 1):
            typer.echo(f"{rank}. {hit.score:.3f}  {hit.title}  [{hit.doc_id}]")
            typer.echo(f"   {_snippet(hit.text)}")
            if hit.url:
                typer.echo(f"   {hit.url}")

    @kb_app.command("stats")
    def stats(
        version: VersionOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
    ) -> None:
        """Describe a version's index: documents by kind, chunks, index type, encoder, fingerprint."""
        name, path, loaded = _load(version)
        info = loaded.kb.stats()
        if as_json:
            typer.echo(json.dumps({"version": name, "directory": str(path), **info.to_dict()}, indent=2))
            return
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(info.documents_by_kind.items())) or "none"
        hnsw = " ".join(f"{key}={value}" for key, value in info.hnsw.items())
        for label, value in (
            ("version", f"{name} ({path}, index built {info.created_at})"),
            ("documents", f"{info.documents} ({kinds})"),
            ("chunks", f"{info.chunks} ({info.chunking})"),
            ("search", f"{info.index_kind} {hnsw}".rstrip() + f", exact below {info.approx_threshold} chunks"),
            ("encoder", f"{info.encoder_id} (dim {info.dim})"),
            ("fingerprint", info.fingerprint),
        ):
            typer.echo(f"{label:<12} {value}")
