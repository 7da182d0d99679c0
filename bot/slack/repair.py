"""Finishing a question stored before (a re-delivery, or work taken over after a crash).

`settle_answered` repairs an answer whose record is still `pending`: the thread is read for the post (the bot's
answers carry metadata naming their question and record, see `bot.slack.slack_io.answer_metadata`); a post found
marks the record posted, none marks it failed and the question is answered afresh. `apologise_late` answers a
question recovered past `recovery_max_age_s`: an apology in its thread and a hand-off (reason `delayed`).
"""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.decision import answer_or_hand_off
from bot.slack import texts
from bot.slack.answering import hand_off, post_followup, record_turn
from bot.slack.deps import Deps
from bot.slack.events import IncomingMessage
from bot.slack.intake import Claim
from bot.slack.slack_io import SlackCallError, answer_metadata, find_answer, post_message
from storage.repository import HandoffReason, ThreadState

logger = logging.getLogger(__name__)


async def settle_answered(
    deps: Deps, client: AsyncWebClient, msg: IncomingMessage, state: ThreadState, claim: Claim
) -> None:
    """A question stored before (a re-delivery, or work taken over after a crash): finish what was left.

    An answer still `pending` was recorded but maybe not posted: when the thread holds its post, only the
    record is fixed; otherwise it is marked failed and the question answered afresh.
    """
    stored = state.answer
    if stored is None or stored.status != "pending" or state.conversation is None:
        return  # only logged, or already posted / failed
    assert stored.id is not None
    conversation = state.conversation
    try:
        ts = await find_answer(
            client,
            channel=conversation.channel_id,
            thread_ts=conversation.thread_ts,
            event_id=msg.event_id,
            answer_id=stored.id,
        )
    except SlackCallError as exc:
        raise RuntimeError(f"cannot tell whether answer {stored.id} was posted: {exc}") from exc  # try again later
    if ts is not None:
        handoff: HandoffReason | None = "abstained" if stored.source == "handoff" else None
        await asyncio.to_thread(
            deps.repo.mark_posted, stored.id, channel_id=conversation.channel_id, slack_ts=ts, handoff=handoff
        )
        return
    await asyncio.to_thread(deps.repo.mark_failed, stored.id, error="interrupted before it was posted")
    text = msg.text[: deps.options.max_question_chars]
    loop = asyncio.get_running_loop()
    answer, _ = await loop.run_in_executor(
        deps.model_pool, lambda: answer_or_hand_off(deps.engine, text, failure_text=texts.ENGINE_FAILED)
    )
    await post_followup(
        deps,
        client,
        conversation=conversation,
        question_id=stored.question_id,
        answer=answer,
        event_id=msg.event_id,
        claim=claim,
    )


async def apologise_late(deps: Deps, client: AsyncWebClient, msg: IncomingMessage, claim: Claim) -> None:
    """A question recovered too late to answer: say sorry in the thread and hand it to a person."""
    turn = await asyncio.to_thread(record_turn, deps, msg, None, claim.received_at)
    notice_ts: str | None = None
    try:
        notice_ts = await post_message(
            client,
            channel=msg.channel_id,
            thread_ts=msg.root_ts,
            text=texts.LATE_APOLOGY,
            metadata=answer_metadata(event_id=msg.event_id, answer_id=None),
        )
    except SlackCallError as exc:
        logger.warning("apology not posted in %s: %s", msg.channel_id, exc)
    await hand_off(
        deps,
        client,
        conversation=turn.conversation,
        answer_id=None,
        user_id=msg.user_id,
        question=msg.text,
        reason="delayed",
        notice_ts=notice_ts,
        notice_text=texts.LATE_APOLOGY,
    )
