"""Answering a question in its thread: ask the engine, record the turn, post it, hand off.

What to answer (and that an engine failure is a hand-off) is `bot.decision`'s; this module only carries it out.

The store is written in whole operations (see `storage._conversations`), at most three per answered question:
the thread's state is read first (`thread_state`, by the message router: a retried event and a thread a human
is handling stop there, before the engine runs), the question and the engine's decision are recorded together
before the answer is posted (`record_question_turn`; the `event_id` is the dedupe key, so a doubly delivered
event stops there), and the record is then marked posted, with the bot's message and any hand-off
(`mark_posted`), or failed (`mark_failed`). Sync work runs off the event loop: the model in its own worker(s)
(`Deps.model_pool`; torch parallelises each pass itself), the store in the default thread pool, so store
calls never queue behind model work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import EngineAnswer
from bot.decision import answer_or_hand_off
from bot.slack import blocks, texts
from bot.slack.deps import Deps
from bot.slack.events import IncomingMessage
from bot.slack.intake import Claim
from bot.slack.metrics import outcome_of
from bot.slack.slack_io import SlackCallError, answer_metadata, permalink, post_message
from bot.slack.turns import store_mark, turn_body
from storage.errors import DuplicateEventError, StorageError, StoreUnavailable
from storage.models import Answer, Conversation, utcnow
from storage.repository import HandoffReason, NewAnswer, ThreadRef, ThreadState, Turn

logger = logging.getLogger(__name__)


def thread_of(msg: IncomingMessage) -> ThreadRef:
    """The thread (conversation key) a message belongs to."""
    return ThreadRef(team_id=msg.team_id, channel_id=msg.channel_id, thread_ts=msg.root_ts)


def record_turn(
    deps: Deps, msg: IncomingMessage, answer: EngineAnswer | None, asked_at: datetime | None = None
) -> Turn:
    """Store the question (cut to the limit) and, when there is one, the engine's decision (status pending)."""
    return deps.repo.record_question_turn(
        thread_of(msg),
        user_id=msg.user_id,
        text=msg.text[: deps.options.max_question_chars],
        answer=None if answer is None else NewAnswer(**answer.record_fields()),
        slack_ts=msg.ts,
        event_id=msg.event_id,
        asked_at=asked_at,
    )


async def answer_question(
    deps: Deps, client: AsyncWebClient, msg: IncomingMessage, state: ThreadState | None, claim: Claim
) -> None:
    """Answer `msg` in its thread (or just log it when a human is handling the thread). Retries are dropped.

    `state` is the thread's state read by the router (`Repository.thread_state`); None when the database is
    away: the answer is then posted without buttons and the turn kept in the spool (`Intake.spool_turn`).
    """
    if not msg.text:  # e.g. a bare mention, or a file without a caption
        if msg.is_dm or msg.mentions_bot:
            await _hint(deps, client, msg)
        return
    if state is not None and msg.is_reply and state.human_handling:  # a person is handling the thread: log only
        await _log_only(deps, msg)
        return
    asked_at = claim.received_at
    text = msg.text[: deps.options.max_question_chars]
    loop = asyncio.get_running_loop()
    answer, handoff = await loop.run_in_executor(
        deps.model_pool, lambda: answer_or_hand_off(deps.engine, text, failure_text=texts.ENGINE_FAILED)
    )
    answered_at = utcnow()
    turn = None
    if state is not None:
        try:
            turn = await asyncio.to_thread(record_turn, deps, msg, answer, asked_at)
        except DuplicateEventError:
            logger.debug("event %s already handled; dropped", msg.event_id)
            return
        except StoreUnavailable as exc:
            deps.intake.health.failed(exc)
    if turn is None:
        await _answer_offline(deps, client, msg, claim, answer, handoff, answered_at)
        _answered(deps, msg, answer, asked_at, conversation_id=None, answer_id=None)
        return
    assert turn.answer_id is not None
    truncated_at = deps.options.max_question_chars if len(msg.text) > len(text) else None
    payload = blocks.answer_blocks(turn.answer_id, answer, truncated_at=truncated_at)
    await _post_and_mark(
        deps,
        client,
        conversation=turn.conversation,
        answer_id=turn.answer_id,
        answer=answer,
        payload=payload,
        event_id=msg.event_id,
        claim=claim,
        handoff=handoff,
        user_id=msg.user_id,
        question=text,
    )
    _answered(deps, msg, answer, asked_at, conversation_id=turn.conversation.id, answer_id=turn.answer_id)


def _answered(
    deps: Deps,
    msg: IncomingMessage,
    answer: EngineAnswer,
    asked_at: datetime,
    *,
    conversation_id: int | None,
    answer_id: int | None,
) -> None:
    """Count the answered question and log its line (LOG_FORMAT=json: one object with these fields)."""
    latency = (utcnow() - asked_at).total_seconds()
    deps.metrics.question(answer.source, latency)
    fields = {
        "event_id": msg.event_id,
        "team_id": msg.team_id,
        "channel": msg.channel_id,
        "conversation_id": conversation_id,
        "answer_id": answer_id,
        "outcome": outcome_of(answer.source),
        "latency_ms": round(latency * 1000, 1),
        "model_version": answer.model_version,
    }
    logger.info("answered %s: %s in %.0f ms", msg.event_id, fields["outcome"], latency * 1000, extra=fields)


async def _answer_offline(
    deps: Deps,
    client: AsyncWebClient,
    msg: IncomingMessage,
    claim: Claim,
    answer: EngineAnswer,
    handoff: HandoffReason | None,
    answered_at: datetime,
) -> None:
    """The database is away: post the answer (no buttons: nothing is stored to point them at), announce a
    hand-off, and keep the whole turn in the spool until the database is back."""
    thread = thread_of(msg)
    conversation = Conversation(team_id=thread.team_id, channel_id=thread.channel_id, thread_ts=thread.thread_ts)
    ts, error, agent_ts = await _post_and_announce(
        deps,
        client,
        conversation=conversation,
        answer=answer,
        payload=blocks.answer_blocks(None, answer),
        metadata=answer_metadata(event_id=msg.event_id, answer_id=None),
        handoff=handoff,
        user_id=msg.user_id,
        question=msg.text,
    )
    turn = turn_body(
        thread=thread,
        user_id=msg.user_id,
        text=msg.text[: deps.options.max_question_chars],
        slack_ts=msg.ts,
        event_id=msg.event_id,
        asked_at=claim.received_at,
        answer=answer.record_fields(),
        answered_at=answered_at,
        posted_ts=ts,
        error=error,
        handoff=handoff,
        agent_channel_ts=agent_ts,
    )
    try:
        await deps.intake.spool_turn(claim, turn)
    except StorageError as exc:
        logger.error("answer to %s was posted but could be stored nowhere: %s", msg.event_id, exc)


async def refuse(client: AsyncWebClient, msg: IncomingMessage) -> None:
    """The question could be stored nowhere: say so in the thread (never silence)."""
    try:
        await post_message(client, channel=msg.channel_id, thread_ts=msg.root_ts, text=texts.NOT_TAKEN)
    except SlackCallError as exc:
        logger.error("could not tell %s that their question was not taken: %s", msg.user_id, exc)


async def post_followup(
    deps: Deps,
    client: AsyncWebClient,
    *,
    conversation: Conversation,
    question_id: int,
    answer: EngineAnswer,
    event_id: str = "",
    claim: Claim | None = None,
) -> None:
    """Record, post and mark posted a further answer to a stored question (a clarifying question's pick, or an
    answer whose first post was interrupted: `event_id` is the question's, `claim` the work)."""
    conversation_id = conversation.id
    assert conversation_id is not None
    fields = answer.record_fields()
    record = await asyncio.to_thread(
        lambda: deps.repo.record_answer(conversation_id=conversation_id, question_id=question_id, **fields)
    )
    assert record.id is not None
    payload = blocks.answer_blocks(record.id, answer)
    await _post_and_mark(
        deps,
        client,
        conversation=conversation,
        answer_id=record.id,
        answer=answer,
        payload=payload,
        event_id=event_id,
        claim=claim,
    )


async def _post_and_mark(
    deps: Deps,
    client: AsyncWebClient,
    *,
    conversation: Conversation,
    answer_id: int,
    answer: EngineAnswer,
    payload: list[dict[str, Any]],
    event_id: str = "",
    claim: Claim | None = None,
    handoff: HandoffReason | None = None,
    user_id: str = "",
    question: str = "",
) -> None:
    """Post a recorded answer in its thread, announce a hand-off to the agents, then store all of it at once
    (with the `claim`'s inbox item removed in the same transaction: the work is done).

    The post carries metadata naming the question and the answer, so a crash before the record is marked is
    repaired from the thread (`settle_answered`); when the database is away, the mark waits in the spool. Any other
    store error propagates: the work stays in the inbox and the sweep settles it from the thread."""
    ts, error, agent_ts = await _post_and_announce(
        deps,
        client,
        conversation=conversation,
        answer=answer,
        payload=payload,
        metadata=answer_metadata(event_id=event_id, answer_id=answer_id),
        handoff=handoff,
        user_id=user_id,
        question=question,
    )
    mark = {
        "channel_id": conversation.channel_id,
        "slack_ts": ts,
        "error": error,
        "handoff": handoff,
        "agent_channel_ts": agent_ts,
        "finish": claim.finish_key() if claim is not None else None,
    }
    try:
        await asyncio.to_thread(store_mark, deps.repo, {"answer_id": answer_id, **mark})
        if claim is not None:
            claim.finished = mark["finish"] is not None
    except StoreUnavailable as exc:
        deps.intake.health.failed(exc)
        await deps.intake.spool_mark(answer_id, mark)


async def _post_and_announce(
    deps: Deps,
    client: AsyncWebClient,
    *,
    conversation: Conversation,
    answer: EngineAnswer,
    payload: list[dict[str, Any]],
    metadata: dict[str, Any],
    handoff: HandoffReason | None,
    user_id: str,
    question: str,
) -> tuple[str | None, str, str | None]:
    """Post an answer in its thread and, for a hand-off, announce it to the agents: (the post's ts or None, the
    posting error or "", the agents' notice ts or None). Slack failures are logged, never raised."""
    ts: str | None = None
    error = ""
    try:
        ts = await post_message(
            client,
            channel=conversation.channel_id,
            thread_ts=conversation.thread_ts,
            text=blocks.fallback_text(answer.text),
            blocks=payload,
            metadata=metadata,
        )
    except SlackCallError as exc:
        logger.error("answer to %s could not be posted: %s", metadata["event_payload"]["question"] or "a question", exc)
        error = str(exc)
    agent_ts = None
    if handoff is not None:
        agent_ts = await announce_handoff(
            deps, client, conversation=conversation, user_id=user_id, question=question, reason=handoff, answer=answer
        )
    return ts, error, agent_ts


async def store_agent_message(deps: Deps, msg: IncomingMessage, conversation: Conversation) -> None:
    """Log an agent's reply in a customer's thread (the bot does not answer it)."""
    assert conversation.id is not None
    try:
        await asyncio.to_thread(
            deps.repo.add_message,
            conversation.id,
            role="agent",
            text=msg.text[: deps.options.max_question_chars],
            user_id=msg.user_id,
            slack_ts=msg.ts,
            event_id=msg.event_id,
        )
    except DuplicateEventError:
        logger.debug("event %s already handled; dropped", msg.event_id)


async def _log_only(deps: Deps, msg: IncomingMessage) -> bool:
    """Store the question without answering it; False when the event was already stored."""
    try:
        await asyncio.to_thread(record_turn, deps, msg, None)
    except DuplicateEventError:
        logger.debug("event %s already handled; dropped", msg.event_id)
        return False
    return True


async def _hint(deps: Deps, client: AsyncWebClient, msg: IncomingMessage) -> None:
    """An empty DM or mention: store it (for dedupe) and reply with a one-line hint."""
    if not await _log_only(deps, msg):
        return
    try:
        await post_message(client, channel=msg.channel_id, thread_ts=msg.root_ts, text=texts.EMPTY_QUESTION)
    except SlackCallError as exc:
        logger.warning("hint could not be posted in %s: %s", msg.channel_id, exc)


async def announce_handoff(
    deps: Deps,
    client: AsyncWebClient,
    *,
    conversation: Conversation,
    user_id: str,
    question: str,
    reason: str,
    answer: EngineAnswer | None = None,
    stored: Answer | None = None,
) -> str | None:
    """Tell the agents' channel about the thread (question, best guess, link); returns the notice's ts, if posted."""
    channel = await deps.agents.channel(client)
    if not channel:
        return None
    try:
        link = await permalink(client, channel=conversation.channel_id, ts=conversation.thread_ts)
        intent = answer.intent if answer else (stored.intent if stored else None)
        confidence = answer.confidence if answer else (stored.confidence if stored else None)
        guess = blocks.handoff_guess(answer, intent=intent, confidence=confidence)
        payload = blocks.handoff_agent_blocks(user_id=user_id, reason=reason, question=question, guess=guess, link=link)
        return await post_message(
            client,
            channel=channel,
            text=blocks.fallback_text(f"Hand-off: {question}"),
            blocks=payload,
        )
    except SlackCallError as exc:
        logger.error("hand-off of conversation %s not announced to agents: %s", conversation.id, exc)
    except Exception:  # the hand-off is still stored, whatever went wrong here
        logger.exception("hand-off of conversation %s not announced to agents", conversation.id)
    return None


async def hand_off(
    deps: Deps,
    client: AsyncWebClient,
    *,
    conversation: Conversation,
    answer_id: int | None,
    user_id: str,
    question: str,
    reason: HandoffReason,
    stored: Answer | None = None,
    notice_ts: str | None = None,
    notice_text: str = texts.HANDOFF_CUSTOMER,
) -> None:
    """Announce the hand-off to the agents, then store it with the bot's notice in the thread (`notice_text`,
    posted as `notice_ts`, if it was)."""
    assert conversation.id is not None
    agent_ts = await announce_handoff(
        deps, client, conversation=conversation, user_id=user_id, question=question, reason=reason, stored=stored
    )
    await _store_quietly(
        deps.repo.record_handoff,
        conversation.id,
        answer_id=answer_id,
        reason=reason,
        agent_channel_ts=agent_ts,
        notice_text=notice_text if notice_ts is not None else None,
        notice_ts=notice_ts,
    )


async def _store_quietly(func: Callable[..., object], *args: object, **kwargs: object) -> None:
    """Run a store write in a thread; a failure is logged (the Slack side already happened)."""
    try:
        await asyncio.to_thread(func, *args, **kwargs)
    except StoreUnavailable as exc:
        logger.warning("store write %s lost: %s", getattr(func, "__name__", func), exc)
    except Exception:
        logger.exception("store write %s failed", getattr(func, "__name__", func))
