"""`supportbot ask` and `supportbot chat`: talk to the bot in the terminal, logged like a Slack conversation.

Both log to the store (the first run trains and promotes the first model: see `bot.runtime`). Each terminal
conversation is one thread: team `local`, channel `terminal`, conversation source `cli`, thread = a session id
(`ask` opens one thread per invocation; `--no-log` skips logging). Per turn, with the store operations Slack
uses: the question and the engine's decision are recorded together (`record_question_turn`), then marked posted
with the bot's reply and, when the bot handed off, the hand-off (`mark_posted`). In `chat`, `+`/`-` (or
`/good`, `/bad`) set the user's verdict on the last answer (a customer rating, source `cli`; one per answer, as
with Slack's buttons) and `/human` asks for a person.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import IO, TYPE_CHECKING, Any, Final, TypeVar

import click
import typer

from bot.answer import EmptyQuestionError, EngineAnswer
from bot.clarify import record_choice
from bot.cli.common import settings
from bot.decision import handoff_reason, why_not
from storage.errors import StorageError
from storage.repository import NewAnswer, Repository, ThreadRef

if TYPE_CHECKING:
    from bot.runtime import ModelHolder

T = TypeVar("T")

TEAM_ID = "local"
CHANNEL_ID = "terminal"
SOURCE: Final = "cli"
GOOD = {"+", "/good", "/+1", "👍"}
BAD = {"-", "/bad", "/-1", "👎"}
QUIT = {"/quit", "/exit", "/q"}
HUMAN = {"/human", "/agent"}
HELP = {"/help", "/?"}
CHAT_HELP = "Type a question. After an answer: + helpful, - not helpful, /human for a person, /quit to leave."
HUMAN_TEXT = "OK, I've asked a human colleague to follow up on this conversation."
_SOURCE_NAMES = {
    "intent": "curated answer",
    "retrieval": "knowledge-base passage",
    "clarify": "clarifying question",
    "handoff": "hand-off",
}
SOMETHING_ELSE_TEXT = "Something else (talk to a person)"


def local_user_id() -> str:
    """The terminal user as a store user id (`local:<login>`)."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "user"
    return f"local:{login}"[:32]


class TerminalLog:
    """Logs one terminal conversation in the store, turn by turn, with the store operations Slack uses.

    Args:
        repo: The store.
        user_id: Who is typing.
        max_question_chars: Questions are stored cut to this length (as in Slack).
        thread: The conversation's thread id; a new session id by default.
    """

    def __init__(self, repo: Repository, *, user_id: str, max_question_chars: int, thread: str | None = None) -> None:
        self.repo = repo
        self.user_id = user_id
        self.max_question_chars = max_question_chars
        self.thread = thread or f"{SOURCE}-{uuid.uuid4().hex[:16]}"
        self._conversation_id: int | None = None
        self.last_question_id: int | None = None

    @property
    def ref(self) -> ThreadRef:
        """The conversation's thread in the store."""
        return ThreadRef(team_id=TEAM_ID, channel_id=CHANNEL_ID, thread_ts=self.thread)

    @property
    def conversation_id(self) -> int:
        """The conversation's id (created on first use)."""
        if self._conversation_id is None:
            conversation = self.repo.get_or_create_conversation(
                team_id=TEAM_ID, channel_id=CHANNEL_ID, thread_ts=self.thread, started_by=self.user_id, source=SOURCE
            )
            assert conversation.id is not None
            self._conversation_id = conversation.id
        return self._conversation_id

    def record(self, question: str, answer: EngineAnswer) -> int:
        """Store the question with the engine's decision, then mark it posted (with the bot's reply and any
        hand-off); returns the answer id."""
        turn = self.repo.record_question_turn(
            self.ref,
            user_id=self.user_id,
            text=question[: self.max_question_chars],
            answer=NewAnswer(**answer.record_fields()),
            source=SOURCE,
        )
        assert turn.answer_id is not None and turn.conversation.id is not None
        self._conversation_id = turn.conversation.id
        self.last_question_id = turn.question_id
        self._posted(turn.answer_id, answer)
        return turn.answer_id

    def record_pick(self, answer_id: int, intent: str | None, followup: EngineAnswer | None) -> int | None:
        """Store the user's pick in a clarifying question and the answer that follows (or the hand-off)."""
        record_choice(self.repo, answer_id, user_id=self.user_id, intent=intent)
        if followup is None or self.last_question_id is None:
            self.request_human(answer_id)
            return None
        stored = self.repo.record_answer(
            conversation_id=self.conversation_id, question_id=self.last_question_id, **followup.record_fields()
        )
        assert stored.id is not None
        self._posted(stored.id, followup)
        return stored.id

    def _posted(self, answer_id: int, answer: EngineAnswer) -> None:
        """The terminal "posts" an answer by printing it: marked posted at once (a hand-off when it handed off)."""
        self.repo.mark_posted(
            answer_id, channel_id=CHANNEL_ID, slack_ts=f"{time.time():.6f}", handoff=handoff_reason(answer)
        )

    def rate(self, answer_id: int, *, helpful: bool) -> None:
        """Store the user's verdict on an answer (a customer rating, source `cli`; a new verdict replaces theirs)."""
        self.repo.set_rating(answer_id, rater_id=self.user_id, rater_role="customer", helpful=helpful, source=SOURCE)

    def request_human(self, answer_id: int | None) -> None:
        """Record that the user asked for a person."""
        self.repo.record_handoff(self.conversation_id, answer_id=answer_id, reason="customer_request")


# --- rendering ------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def diagnostics(answer: EngineAnswer) -> list[str]:
    """The reasons behind an answer, one line each (plain text)."""
    lines = [f"source      {answer.source} ({_SOURCE_NAMES[answer.source]})"]
    if answer.intent is not None:
        lines.append(f"intent      {answer.intent}  confidence {_pct(answer.confidence)}")
    if answer.score is not None and answer.threshold is not None:
        sign = ">=" if answer.score >= answer.threshold else "<"
        lines.append(f"score       {answer.score_name} {answer.score:.3f} {sign} threshold {answer.threshold:.3f}")
    if answer.candidates:
        lines.append("offered     " + " | ".join(intent for intent, _ in answer.candidates))
    if answer.reason:
        lines.append(f"why not     {why_not(answer.reason)}")
    if answer.top_intents:
        lines.append("top intents " + " | ".join(f"{name} {_pct(p)}" for name, p in answer.top_intents))
    for number, hit in enumerate(answer.hits[:3]):
        label = "kb hits    " if number == 0 else "           "
        lines.append(f"{label} {hit.score:.3f}  {hit.title}  [{hit.doc_id}]")
    for number, doc in enumerate(answer.sources):
        label = "sources    " if number == 0 else "           "
        lines.append(f"{label} {doc.title}" + (f"  <{doc.url}>" if doc.url else f"  [{doc.doc_id}]"))
    if answer.truncated:
        lines.append(f"note        the question was cut to {len(answer.question)} characters")
    lines.append(f"model       {answer.model_version or '-'}  {answer.latency_ms:.1f} ms")
    return lines


def answer_json(answer: EngineAnswer, logged: dict[str, Any] | None) -> str:
    """The answer and its diagnostics as one JSON document."""
    payload = asdict(answer)
    payload["logged"] = logged
    return json.dumps(payload, ensure_ascii=False, indent=2)


def _short(answer: EngineAnswer) -> str:
    parts = [_SOURCE_NAMES[answer.source]]
    if answer.intent is not None and answer.source != "retrieval":
        parts.append(f"{answer.intent} {_pct(answer.confidence)}")
    if answer.sources and answer.source != "handoff":
        parts.append("see: " + "; ".join(doc.url or doc.title for doc in answer.sources))
    return "(" + " · ".join(parts) + ")"


# --- commands -------------------------------------------------------------------------------------------


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


def _quietly(action: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Run a logging step; a store failure is reported on stderr and the conversation goes on."""
    try:
        return action(*args, **kwargs)
    except StorageError as exc:
        _echo_err(f"warning: not logged ({exc})")
        return None


def _open(repo: Repository, *, progress: bool) -> ModelHolder:
    from bot.runtime import build_engine  # loads torch: only when a command needs the model

    return build_engine(settings(), repo, watch=False, echo=_echo_err, progress=progress)


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin, decoded leniently (binary garbage becomes U+FFFD, never an exception)."""
    if sys.stdin is None:
        return
    buffer: IO[bytes] | None = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        yield from (line.rstrip("\r\n") for line in sys.stdin)
        return
    for raw in iter(buffer.readline, b""):
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def register(app: typer.Typer) -> None:
    """Add `ask` and `chat` to the main app."""

    @app.command("ask")
    def ask(
        question: str = typer.Argument(..., help="The question, in quotes."),
        as_json: bool = typer.Option(False, "--json", help="Print the answer and diagnostics as JSON."),
        log: bool = typer.Option(True, "--log/--no-log", help="Log the exchange in the store (one thread)."),
    ) -> None:
        """Answer one question and show why: source, intent, confidence vs threshold, top intents, KB hits."""
        current = settings()
        repo = Repository(current.db_url, mask_pii=current.pii_masking)
        try:
            with _open(repo, progress=not as_json) as holder:
                try:
                    answer = holder.answer(question)
                except EmptyQuestionError as exc:
                    raise typer.BadParameter(str(exc), param_hint="QUESTION") from None
                logged = None
                if log:
                    session = TerminalLog(repo, user_id=local_user_id(), max_question_chars=current.max_question_chars)
                    answer_id = _quietly(session.record, question, answer)
                    if answer_id is not None:
                        logged = {
                            "conversation_id": session.conversation_id,
                            "thread": session.thread,
                            "answer_id": answer_id,
                        }
        finally:
            repo.close()
        if as_json:
            typer.echo(answer_json(answer, logged))
            return
        typer.echo(answer.text)
        typer.echo("")
        for line in diagnostics(answer):
            typer.echo(click.style(line, dim=True))

    @app.command("chat")
    def chat(
        details: bool = typer.Option(False, "--details", help="Show the full diagnostics after each answer."),
    ) -> None:
        """Talk to the bot in the terminal (stdin may be a pipe); every turn is logged like a Slack thread."""
        current = settings()
        repo = Repository(current.db_url, mask_pii=current.pii_masking)
        interactive = sys.stdin is not None and sys.stdin.isatty()
        try:
            with _open(repo, progress=True) as holder:
                session = TerminalLog(repo, user_id=local_user_id(), max_question_chars=current.max_question_chars)
                typer.echo(f"supportbot chat (model {holder.version}). {CHAT_HELP}")
                _converse(holder, session, _stdin_lines(), interactive=interactive, details=details)
        finally:
            repo.close()


def _converse(
    holder: ModelHolder, session: TerminalLog, lines: Iterator[str], *, interactive: bool, details: bool
) -> None:
    last_answer: int | None = None
    pending: EngineAnswer | None = None  # a clarifying question waiting for a number

    def prompt() -> None:
        if interactive:
            typer.echo("you> ", nl=False)

    prompt()
    for line in lines:
        command = line.strip()
        if not command:
            prompt()
            continue
        lowered = command.lower()
        if lowered in QUIT:
            break
        if pending is not None and command.isdecimal() and int(command) <= len(pending.candidates):
            last_answer = _pick(holder, session, pending, last_answer, int(command), details=details)
            pending = None
        elif lowered in HELP:
            typer.echo(CHAT_HELP)
        elif lowered in GOOD or lowered in BAD:
            if last_answer is None:
                typer.echo("Nothing to rate yet: ask a question first.")
            else:
                helpful = lowered in GOOD
                _quietly(session.rate, last_answer, helpful=helpful)
                typer.echo("Thanks, noted." if helpful else "Sorry about that. Type /human to ask a person.")
        elif lowered in HUMAN:
            _quietly(session.request_human, last_answer)
            typer.echo(f"bot> {HUMAN_TEXT}")
        else:
            try:
                answer = holder.answer(line)
            except EmptyQuestionError:
                prompt()
                continue
            last_answer = _quietly(session.record, line, answer)
            pending = answer if answer.source == "clarify" else None
            _show(answer, details=details)
        prompt()
    if interactive:
        typer.echo("")
    typer.echo("Bye.")


def _show(answer: EngineAnswer, *, details: bool) -> None:
    typer.echo(f"bot> {answer.text}")
    if answer.source == "clarify":
        for number, (_, question) in enumerate(answer.candidates, start=1):
            typer.echo(f"     {number}) {question}")
        typer.echo(f"     0) {SOMETHING_ELSE_TEXT}")
    typer.echo(click.style(f"     {_short(answer)}", dim=True))
    if details:
        for detail in diagnostics(answer):
            typer.echo(click.style(f"     {detail}", dim=True))
    if answer.source in ("intent", "retrieval"):
        typer.echo(click.style("     Rate it: + helpful, - not helpful", dim=True))


def _pick(
    holder: ModelHolder, session: TerminalLog, asked: EngineAnswer, asked_id: int | None, number: int, *, details: bool
) -> int | None:
    """The user typed `number` after a clarifying question: answer the picked intent (0: hand off)."""
    intent = asked.candidates[number - 1][0] if number else None
    followup = holder.answer_intent(intent) if intent else None
    answer_id = asked_id
    if asked_id is not None:
        answer_id = _quietly(session.record_pick, asked_id, intent, followup)
    if followup is None:
        typer.echo(f"bot> {HUMAN_TEXT}")
        return asked_id
    _show(followup, details=details)
    return answer_id
