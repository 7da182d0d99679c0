"""The answer's buttons (Helpful / Not helpful, Talk to a human, a clarifying question's choices) and the agents'
"Correct this answer" message shortcut (and the Correct button of answers posted before it)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.clarify import SOMETHING_ELSE, record_choice
from bot.decision import predicted_intent
from bot.slack import blocks, texts
from bot.slack.answering import hand_off, post_followup
from bot.slack.deps import Deps
from bot.slack.events import ButtonPress, MessageShortcut, parse_button, parse_message_shortcut
from bot.slack.intake import CLAIM, REFUSED, Claim
from bot.slack.slack_io import CALL_ERRORS, SlackCallError, describe, post_ephemeral, post_message
from storage.errors import StorageError, StoreUnavailable
from storage.repository import AnswerContext, ThreadRef

logger = logging.getLogger(__name__)


async def _tell(client: AsyncWebClient, press: ButtonPress, text: str) -> None:
    await post_ephemeral(client, channel=press.channel_id, user=press.user_id, text=text, thread_ts=press.thread_ts)


def _context(deps: Deps, press: ButtonPress) -> AnswerContext | None:
    """The pressed answer with its conversation (None when unknown or clicked in another thread)."""
    thread = ThreadRef(team_id=press.team_id, channel_id=press.channel_id, thread_ts=press.thread_ts)
    return deps.repo.answer_context(press.answer_id, thread)


async def rate_click(deps: Deps, client: AsyncWebClient, claim: Claim) -> bool:
    """Carry out a claimed rating click (always done: a failure is told to the rater)."""
    press, helpful = claim.work.button()
    await rate(deps, client, press, helpful=helpful)
    return True


async def rate(deps: Deps, client: AsyncWebClient, press: ButtonPress, *, helpful: bool) -> None:
    """Store a button rating (one verdict per rater), then confirm it to the rater (only once it is stored)."""
    role = await deps.agents.rater_role(client, press.user_id)
    try:
        stored = await asyncio.to_thread(
            deps.repo.set_rating,
            press.answer_id,
            rater_id=press.user_id,
            rater_role=role,
            helpful=helpful,
            source="button",
        )
    except StoreUnavailable:
        raise  # kept (inbox or spool) and stored once the database is back
    except StorageError as exc:
        logger.warning("rating of answer %s by %s not stored: %s", press.answer_id, press.user_id, exc)
        await _tell(client, press, texts.RATING_FAILED)
        return
    if stored is None:
        await _tell(client, press, texts.ANSWER_GONE)
        return
    if stored:
        deps.metrics.rating(helpful)
    await _tell(client, press, texts.RATED_HELPFUL if helpful else texts.RATED_NOT_HELPFUL)


async def request_human(deps: Deps, client: AsyncWebClient, press: ButtonPress) -> None:
    """The customer asked for a person: say so in the thread, tell the agents, store the hand-off."""
    thread = await asyncio.to_thread(_context, deps, press)
    if thread is None:
        await _tell(client, press, texts.ANSWER_GONE)
        return
    if thread.handed_off:
        await _tell(client, press, texts.HANDOFF_ALREADY)
        return
    notice_ts: str | None = None
    try:
        notice_ts = await post_message(
            client, channel=press.channel_id, thread_ts=press.thread_ts, text=texts.HANDOFF_CUSTOMER
        )
    except SlackCallError as exc:
        logger.warning("hand-off notice not posted in %s: %s", press.channel_id, exc)
    await hand_off(
        deps,
        client,
        conversation=thread.conversation,
        answer_id=press.answer_id,
        user_id=press.user_id,
        question=thread.question,
        reason="customer_request",
        stored=thread.answer,
        notice_ts=notice_ts,
    )


async def clarify_pick(deps: Deps, client: AsyncWebClient, press: ButtonPress, choice: str, shown: str) -> None:
    """A customer answered a clarifying question: store the pick as a label, then answer it (or hand off).

    `choice` is the picked intent (or `SOMETHING_ELSE`), `shown` the button's text.
    """
    thread = await asyncio.to_thread(_context, deps, press)
    intent = None if choice == SOMETHING_ELSE else choice
    unknown = intent is not None and intent not in deps.engine.intents  # a forged value, or the model changed
    if thread is None or thread.answer.source != "clarify" or unknown:
        await _tell(client, press, texts.ANSWER_GONE)
        return
    if thread.conversation.started_by and press.user_id != thread.conversation.started_by:
        await _tell(client, press, texts.CLARIFY_NOT_YOURS)  # a bystander's click is nobody's label
        return
    if press.answer_id in _PICKING:
        await _tell(client, press, texts.CLARIFY_ALREADY)
        return
    _PICKING.add(press.answer_id)
    try:
        await _record_pick(deps, client, press, thread, intent, shown)
    finally:
        _PICKING.discard(press.answer_id)


_PICKING: set[int] = set()
"""Clarifying answers whose pick is being handled in this process (a double click waits for nothing)."""


async def _record_pick(
    deps: Deps, client: AsyncWebClient, press: ButtonPress, thread: AnswerContext, intent: str | None, shown: str
) -> None:
    if thread.picked:
        await _tell(client, press, texts.CLARIFY_ALREADY)
        return
    try:
        await asyncio.to_thread(record_choice, deps.repo, press.answer_id, user_id=press.user_id, intent=intent)
    except StorageError as exc:
        logger.warning("clarification of answer %s by %s not stored: %s", press.answer_id, press.user_id, exc)
        await _tell(client, press, texts.RATING_FAILED)
        return
    await _close_buttons(client, press, thread.answer.text, texts.CLARIFY_PICKED.format(choice=shown[:200]))
    if intent is None:
        await request_human(deps, client, press)
        return
    loop = asyncio.get_running_loop()
    try:
        followup = await loop.run_in_executor(deps.model_pool, deps.engine.answer_intent, intent)
    except KeyError:  # the model serving now has no answer for it (a version switch): a person takes over
        await request_human(deps, client, press)
        return
    await post_followup(
        deps, client, conversation=thread.conversation, question_id=thread.answer.question_id, answer=followup
    )


async def _close_buttons(client: AsyncWebClient, press: ButtonPress, text: str, choice: str) -> None:
    """Replace the clarifying question's buttons by the choice (so it cannot be answered twice)."""
    try:
        await client.chat_update(
            channel=press.channel_id,
            ts=press.message_ts,
            text=blocks.fallback_text(text),
            blocks=blocks.clarified_blocks(text, choice),
        )
    except CALL_ERRORS as exc:
        logger.warning("chat.update of clarifying question %s failed: %s", press.answer_id, describe(exc))


async def open_correction(deps: Deps, client: AsyncWebClient, press: ButtonPress) -> None:
    """Open the correction modal for an agent; anyone else gets a polite refusal and nothing is stored."""
    if not await deps.agents.can_label(client, press.user_id):
        await _tell(client, press, texts.NOT_AN_AGENT)
        return
    thread = await asyncio.to_thread(_context, deps, press)
    if thread is None or press.trigger_id is None:
        await _tell(client, press, texts.ANSWER_GONE)
        return
    try:
        intents = list(deps.engine.intents)
    except Exception:
        logger.exception("engine.intents failed; offering the stored intent only")
        intents = [thread.answer.intent] if thread.answer.intent else []
    target = blocks.CorrectionTarget(
        answer_id=press.answer_id,
        channel_id=press.channel_id,
        thread_ts=press.thread_ts,
        predicted_intent=predicted_intent(thread.answer, deps.options.out_of_scope_label),
    )
    stored = thread.answer
    view = blocks.correction_modal(
        target,
        intents=intents,
        out_of_scope_label=deps.options.out_of_scope_label,
        question=thread.question,
        confidence=stored.confidence,
        details=blocks.answer_details(
            source=stored.source, intent=stored.intent, confidence=stored.confidence, model_version=stored.model_version
        ),
    )
    try:
        await client.views_open(trigger_id=press.trigger_id, view=view)
    except CALL_ERRORS as exc:
        logger.warning("views.open for answer %s failed: %s", press.answer_id, describe(exc))


async def correct_message(deps: Deps, client: AsyncWebClient, shortcut: MessageShortcut) -> None:
    """The agents' message shortcut on one of the bot's replies: the correction modal for that answer."""
    answer = await asyncio.to_thread(
        deps.repo.find_answer_by_slack_ts, channel_id=shortcut.channel_id, slack_ts=shortcut.message_ts
    )
    if answer is None or answer.id is None:
        await post_ephemeral(
            client,
            channel=shortcut.channel_id,
            user=shortcut.user_id,
            text=texts.NOT_AN_ANSWER,
            thread_ts=shortcut.thread_ts,
        )
        return
    await open_correction(deps, client, ButtonPress(**dataclasses.asdict(shortcut), answer_id=answer.id))


def register(app: AsyncApp, deps: Deps) -> None:
    """Listen to the answer buttons and the agents' shortcut, and acknowledge any other `block_actions`."""

    async def on_rating(client: AsyncWebClient, context: AsyncBoltContext) -> None:
        claim = context.get(CLAIM)
        if claim is not None:
            await deps.intake.carry_out(claim, lambda: rate_click(deps, client, claim))
        elif (refused := context.get(REFUSED)) is not None:
            press, _ = refused.button()
            await _tell(client, press, texts.RATING_FAILED)

    async def on_helpful(ack: AsyncAck, client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await ack()  # the intake stored the click before this listener ran
        await on_rating(client, context)

    async def on_not_helpful(ack: AsyncAck, client: AsyncWebClient, context: AsyncBoltContext) -> None:
        await ack()
        await on_rating(client, context)

    async def on_human(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if (press := parse_button(body)) is not None:
            await request_human(deps, client, press)

    async def on_correct(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if (press := parse_button(body)) is not None:
            await open_correction(deps, client, press)

    async def on_clarify(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if (press := parse_button(body)) is not None:
            action = body["actions"][0]
            choice = str(action.get("action_id", "")).removeprefix(blocks.ACTION_CLARIFY_PREFIX)
            shown = action.get("text", {}).get("text") if isinstance(action.get("text"), dict) else None
            await clarify_pick(deps, client, press, choice, str(shown or choice))

    async def on_correct_shortcut(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        if (shortcut := parse_message_shortcut(body)) is not None:
            await correct_message(deps, client, shortcut)

    async def on_other(ack: AsyncAck) -> None:
        await ack()

    app.action(blocks.ACTION_HELPFUL)(on_helpful)
    app.action(blocks.ACTION_NOT_HELPFUL)(on_not_helpful)
    app.action(blocks.ACTION_HUMAN)(on_human)
    app.action(blocks.ACTION_CORRECT)(on_correct)
    app.shortcut(blocks.CORRECT_SHORTCUT)(on_correct_shortcut)
    app.action(re.compile("^" + re.escape(blocks.ACTION_CLARIFY_PREFIX)))(on_clarify)
    app.action(re.compile(".*"))(on_other)
