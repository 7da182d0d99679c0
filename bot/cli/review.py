"""`supportbot review`: the agents' review queue and new-intent proposals in the terminal.

The same lists as the App Home, labelled the same way (agent ratings, sources `review` and `discovery`), so
the next nightly retraining learns them. The nightly job fills both; `--refresh` ranks them now with the
production model (no training).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

import typer

from bot.cli.common import settings
from bot.curation import intent_name
from storage.models import Proposal
from storage.repository import QueueEntry, Repository

HELP = "number = that guess, o = out of scope, n = new intent, an intent's name, s = skip, q = quit"

Ask = Callable[[str], str]


def _known_labels(repo: Repository) -> list[str]:
    """The production model's labels (from its manifest, without loading it); [] without one."""
    from bot.versions import read_manifest
    from training.locations import located

    production = repo.production_model()
    if production is None:
        return []
    try:
        labels = read_manifest(located(production, settings().models_dir)).get("labels")
    except Exception:
        return []
    return [str(label) for label in labels] if isinstance(labels, list) else []


def _new_intent(ask: Ask, oos: str) -> tuple[str, str] | None:
    name = intent_name(ask("  new intent name"))
    if not name or name == oos:
        typer.echo("  not a usable name (letters, digits, underscores); skipped")
        return None
    answer = ask("  its answer (what the bot will say)").strip()
    if not answer:
        typer.echo("  no answer given; skipped")
        return None
    return name, answer


def label_queue(
    repo: Repository, entries: Sequence[QueueEntry], *, ask: Ask, agent: str, known: Sequence[str], oos: str
) -> int:
    """Ask for a label for each entry; returns how many were stored. Stops at "q"."""
    from bot.curation import label_question

    stored = 0
    for number, entry in enumerate(entries, 1):
        guesses = [str(label) for label, _ in entry.item.guesses]
        typer.echo(f"\n[{number}/{len(entries)}] {entry.question!r}")
        typer.echo(f"  bot: {entry.answer.source}; why: {', '.join(entry.item.reasons) or 'uncertain'}")
        typer.echo("  " + "   ".join(f"{i}) {label} {p:.0%}" for i, (label, p) in enumerate(entry.item.guesses, 1)))
        reply = ask(f"  label ({HELP})").strip()
        choice: tuple[str, str | None] | None = None
        if reply == "q":
            break
        if reply.isdigit() and 1 <= int(reply) <= len(guesses):
            choice = (guesses[int(reply) - 1], None)
        elif reply == "o":
            choice = (oos, None)
        elif reply == "n":
            choice = _new_intent(ask, oos)
        elif reply and reply != "s":
            name = intent_name(reply)
            choice = (name, None) if name in known or name == oos else None
            if choice is None:
                typer.echo(f"  {reply!r} is not an intent of the production model; use n for a new one")
        if choice is None:
            continue
        intent, answer = choice
        if label_question(repo, entry.answer.id or 0, agent_id=agent, intent=intent, answer=answer, oos=oos):
            stored += 1
            typer.echo(f"  labelled {intent}")
    return stored


def decide_proposals(repo: Repository, proposals: Sequence[Proposal], *, ask: Ask, agent: str, oos: str) -> int:
    """Ask about each waiting proposal (accept as a new intent, dismiss, skip); returns how many were decided."""
    decided = 0
    for proposal in proposals:
        assert proposal.id is not None
        typer.echo(f"\n{len(proposal.answer_ids)} questions like these have no intent: make it one?")
        for question in proposal.typical:
            typer.echo(f"  > {question}")
        typer.echo(f"  closest intent today: {proposal.nearest_intent or 'none'}")
        reply = ask("  a = make it an intent, d = dismiss, s = skip, q = quit").strip()
        if reply == "q":
            break
        if reply == "d":
            decided += repo.decide_proposal(proposal.id, status="dismissed", agent_id=agent) is not None
        elif reply == "a" and (named := _new_intent(ask, oos)) is not None:
            name, answer = named
            done = repo.decide_proposal(proposal.id, status="accepted", agent_id=agent, intent=name, answer=answer)
            decided += done is not None
            if done is not None:
                typer.echo(f"  accepted as {name}: learnt at the next nightly retraining")
    return decided


def register(app: typer.Typer) -> None:
    @app.command()
    def review(
        limit: Annotated[int, typer.Option(min=1, help="How many queued questions to go through.")] = 20,
        list_only: Annotated[bool, typer.Option("--list", help="Print the queue and proposals; ask nothing.")] = False,
        refresh: Annotated[
            bool, typer.Option(help="Rank the queue and look for new intents now (production model, no training).")
        ] = False,
        agent: Annotated[str, typer.Option(help="Who labels (stored as the rater).")] = "cli",
    ) -> None:
        """Label the questions whose label helps the next model most, and decide new-intent proposals."""
        current = settings()
        with Repository(current.db_url, mask_pii=current.pii_masking) as repo:
            if refresh:
                from bot.nightly import refresh_lists

                refresh_lists(current, repo, echo=lambda line: typer.echo(line, err=True))
            entries = repo.review_queue(limit=limit)
            proposals = repo.proposals("waiting")
            typer.echo(f"review queue: {repo.review_queue_size()} questions waiting; {len(proposals)} proposals")
            if list_only:
                for entry in entries:
                    guesses = ", ".join(f"{label} {p:.0%}" for label, p in entry.item.guesses)
                    typer.echo(f"  {entry.item.priority:.2f}  {entry.question!r}  [{guesses}]")
                for proposal in proposals:
                    typer.echo(f"  proposal {proposal.id}: {len(proposal.answer_ids)} like {proposal.typical[0]!r}")
                return

            def ask(prompt: str) -> str:
                return str(typer.prompt(prompt, default="s", show_default=False))

            oos = current.out_of_scope_label
            labelled = label_queue(repo, entries, ask=ask, agent=agent, known=_known_labels(repo), oos=oos)
            decided = decide_proposals(repo, proposals, ask=ask, agent=agent, oos=oos)
            typer.echo(f"\n{labelled} questions labelled, {decided} proposals decided; the next retraining learns them")
