"""Answering a question in its thread: store it, ask the engine, record the answer, post it, hand off.

The order makes every answer accounted for: the question is stored first (its `event_id` is the dedupe
key, so a retried or doubly delivered event stops here), the engine's decision is recorded before it is
posted, and the record is then marked posted (with the message ts that ratings refer to) or failed.
Sync work runs off the event loop: the model in its own worker(s) (`Deps.model_pool`; torch parallelises
each pass itself), the store in the default thread pool, so store calls never queue behind model work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import EngineAnswer
from bot.slack import blocks, texts
from bot.slack.deps import Deps
from bot.slack.events import IncomingMessage
from bot.slack.slack_io import SlackCallError, permalink, post_message
from storage.errors import DuplicateEventError
from storage.models import Answer, Conversation

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A question stored and answered by the engine, not yet posted."""

    conversation: Conversation
    question_id: int
    answer: EngineAnswer
    answer_id: int
    truncated: bool
    engine_failed: bool


def _engine_answer(deps: Deps, text: str) -> tuple[EngineAnswer, bool]:
    """Ask the engine; an engine failure becomes a hand-off (never a silent drop). Returns (answer, failed)."""
    started = time.perf_counter()
    try:
        return deps.engine.answer(text), False
    except Exception:
        logger.exception("the engine failed on a question; handing it off")
        elapsed = (time.perf_counter() - started) * 1000
        return EngineAnswer(texts.ENGINE_FAILED, "handoff", None, None, [], None, elapsed), True


@dataclass(frozen=True)
class StoredQuestion:
    """A question stored in its conversation; `text` is what the model reads (cut to the limit)."""

    conversation: Conversation
    question_id: int
    text: str
    truncated: bool
    quiet: bool  # a human is handling the thread (or it is not to be answered): log only


def _store_question(deps: Deps, msg: IncomingMessage, *, answer_it: bool = True) -> StoredQuestion:
    """Store the question in its thread's conversation. Raises DuplicateEventError for a handled event."""
    repo = deps.repo
    conversation = repo.get_or_create_conversation(
        team_id=msg.team_id, channel_id=msg.channel_id, thread_ts=msg.root_ts, started_by=msg.user_id
    )
    assert conversation.id is not None
    text = msg.text[: deps.max_question_chars]
    question = repo.add_message(
        conversation.id, role="user", text=text, user_id=msg.user_id, slack_ts=msg.ts, event_id=msg.event_id
    )
    assert question.id is not None
    quiet = not answer_it or (msg.is_reply and _human_is_handling(deps, conversation.id))
    return StoredQuestion(conversation, question.id, text, len(msg.text) > len(text), quiet)


def _record(deps: Deps, stored: StoredQuestion, answer: EngineAnswer) -> int:
    """Record the engine's decision (status pending) before it is posted; returns the answer id."""
    assert stored.conversation.id is not None
    record = deps.repo.record_answer(
        conversation_id=stored.conversation.id,
        question_id=stored.question_id,
        **answer.record_fields(),
    )
    assert record.id is not None
    return record.id


async def _prepare(deps: Deps, msg: IncomingMessage) -> Prepared | None:
    """Store the question, ask the engine (in the model's own worker), record the answer.

    None when a human is handling the thread. Raises DuplicateEventError for a handled event.
    """
    stored = await asyncio.to_thread(_store_question, deps, msg)
    if stored.quiet:
        return None
    loop = asyncio.get_running_loop()
    answer, failed = await loop.run_in_executor(deps.model_pool, _engine_answer, deps, stored.text)
    answer_id = await asyncio.to_thread(_record, deps, stored, answer)
    return Prepared(stored.conversation, stored.question_id, answer, answer_id, stored.truncated, failed)


def _human_is_handling(deps: Deps, conversation_id: int) -> bool:
    """True once an agent has written in the thread: the bot then stays quiet there."""
    return any(message.role == "agent" for message in deps.repo.messages(conversation_id))


def _mark_posted(deps: Deps, prepared: Prepared, *, channel_id: str, ts: str) -> None:
    assert prepared.conversation.id is not None
    deps.repo.mark_answer_posted(prepared.answer_id, channel_id=channel_id, slack_ts=ts)
    deps.repo.add_message(prepared.conversation.id, role="bot", text=prepared.answer.text, slack_ts=ts)


async def answer_question(deps: Deps, client: AsyncWebClient, msg: IncomingMessage) -> None:
    """Answer `msg` in its thread (or just log it when a human is handling the thread). Retries are dropped."""
    if not msg.text:  # e.g. a bare mention, or a file without a caption
        if msg.is_dm or msg.mentions_bot:
            await _hint(deps, client, msg)
        return
    try:
        prepared = await _prepare(deps, msg)
    except DuplicateEventError:
        logger.debug("event %s already handled; dropped", msg.event_id)
        return
    if prepared is None:
        return
    truncated_at = deps.max_question_chars if prepared.truncated else None
    payload = blocks.answer_blocks(prepared.answer_id, prepared.answer, truncated_at=truncated_at)
    try:
        ts = await post_message(
            client,
            channel=msg.channel_id,
            thread_ts=msg.root_ts,
            text=blocks.fallback_text(prepared.answer.text),
            blocks=payload,
        )
    except SlackCallError as exc:
        logger.error("answer %s could not be posted: %s", prepared.answer_id, exc)
        await _store_quietly(deps.repo.mark_answer_failed, prepared.answer_id, error=str(exc))
    else:
        await _store_quietly(_mark_posted, deps, prepared, channel_id=msg.channel_id, ts=ts)
    if prepared.answer.source == "handoff":
        await hand_off(
            deps,
            client,
            conversation=prepared.conversation,
            answer_id=prepared.answer_id,
            user_id=msg.user_id,
            question=msg.text[: deps.max_question_chars],
            reason="engine_error" if prepared.engine_failed else "abstained",
            answer=prepared.answer,
        )


async def post_followup(
    deps: Deps, client: AsyncWebClient, *, conversation: Conversation, question_id: int, answer: EngineAnswer
) -> None:
    """Record, post and mark posted a further answer to a stored question (a clarifying question's pick)."""
    conversation_id = conversation.id
    assert conversation_id is not None
    fields = answer.record_fields()
    record = await asyncio.to_thread(
        lambda: deps.repo.record_answer(conversation_id=conversation_id, question_id=question_id, **fields)
    )
    assert record.id is not None
    try:
        ts = await post_message(
            client,
            channel=conversation.channel_id,
            thread_ts=conversation.thread_ts,
            text=blocks.fallback_text(answer.text),
            blocks=blocks.answer_blocks(record.id, answer),
        )
    except SlackCallError as exc:
        logger.error("answer %s could not be posted: %s", record.id, exc)
        await _store_quietly(deps.repo.mark_answer_failed, record.id, error=str(exc))
        return
    await _store_quietly(deps.repo.mark_answer_posted, record.id, channel_id=conversation.channel_id, slack_ts=ts)
    await _store_quietly(deps.repo.add_message, conversation_id, role="bot", text=answer.text, slack_ts=ts)


async def store_agent_message(deps: Deps, msg: IncomingMessage, conversation: Conversation) -> None:
    """Log an agent's reply in a customer's thread (the bot does not answer it)."""
    assert conversation.id is not None
    try:
        await asyncio.to_thread(
            deps.repo.add_message,
            conversation.id,
            role="agent",
            text=msg.text[: deps.max_question_chars],
            user_id=msg.user_id,
            slack_ts=msg.ts,
            event_id=msg.event_id,
        )
    except DuplicateEventError:
        logger.debug("event %s already handled; dropped", msg.event_id)


async def _hint(deps: Deps, client: AsyncWebClient, msg: IncomingMessage) -> None:
    """An empty DM or mention: store it (for dedupe) and reply with a one-line hint."""
    try:
        await asyncio.to_thread(_store_question, deps, msg, answer_it=False)
    except DuplicateEventError:
        return
    try:
        await post_message(client, channel=msg.channel_id, thread_ts=msg.root_ts, text=texts.EMPTY_QUESTION)
    except SlackCallError as exc:
        logger.warning("hint could not be posted in %s: %s", msg.channel_id, exc)


async def hand_off(
    deps: Deps,
    client: AsyncWebClient,
    *,
    conversation: Conversation,
    answer_id: int | None,
    user_id: str,
    question: str,
    reason: str,
    answer: EngineAnswer | None = None,
    stored: Answer | None = None,
) -> None:
    """Tell the agents' channel about the thread (question, best guess, link) and store the hand-off."""
    assert conversation.id is not None
    agent_ts: str | None = None
    if deps.agent_channel_id:
        link = await permalink(client, channel=conversation.channel_id, ts=conversation.thread_ts)
        intent = answer.intent if answer else (stored.intent if stored else None)
        confidence = answer.confidence if answer else (stored.confidence if stored else None)
        guess = blocks.handoff_guess(answer, intent=intent, confidence=confidence)
        payload = blocks.handoff_agent_blocks(user_id=user_id, reason=reason, question=question, guess=guess, link=link)
        try:
            agent_ts = await post_message(
                client,
                channel=deps.agent_channel_id,
                text=blocks.fallback_text(f"Hand-off: {question}"),
                blocks=payload,
            )
        except SlackCallError as exc:
            logger.error("hand-off of conversation %s not announced to agents: %s", conversation.id, exc)
    await _store_quietly(
        deps.repo.add_handoff, conversation.id, answer_id=answer_id, reason=reason, agent_channel_ts=agent_ts
    )


async def _store_quietly(func: Callable[..., object], *args: object, **kwargs: object) -> None:
    """Run a store write in a thread; a failure is logged (the Slack side already happened)."""
    try:
        await asyncio.to_thread(func, *args, **kwargs)
    except Exception:
        logger.exception("store write %s failed", getattr(func, "__name__", func))
