"""The agents' correction modal submission: stored as a corrected rating."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.curation import label_question
from bot.slack import blocks, texts
from bot.slack.deps import Deps
from bot.slack.slack_io import post_ephemeral
from storage.errors import StorageError
from storage.repository import Repository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Correction:
    """What an agent submitted in the correction modal."""

    intent: str
    better_answer: str | None


def parse_correction(view: Any) -> Correction | None:
    """The chosen intent and optional better answer from a submitted modal, else `None`."""
    if not isinstance(view, dict):
        return None
    values = view.get("state", {}).get("values", {}) if isinstance(view.get("state"), dict) else {}
    if not isinstance(values, dict):
        return None
    select = values.get(blocks.INTENT_BLOCK, {}).get(blocks.INTENT_ACTION, {})
    option = select.get("selected_option") if isinstance(select, dict) else None
    intent = option.get("value") if isinstance(option, dict) else None
    if not isinstance(intent, str) or not intent.strip():
        return None
    text_input = values.get(blocks.BETTER_ANSWER_BLOCK, {}).get(blocks.BETTER_ANSWER_ACTION, {})
    better = text_input.get("value") if isinstance(text_input, dict) else None
    better = better.strip() if isinstance(better, str) and better.strip() else None
    return Correction(intent.strip(), better)


def store_correction(
    repo: Repository, answer_id: int, *, agent_id: str, correction: Correction, out_of_scope_label: str
) -> bool:
    """Store the agent's correction (`bot.curation.label_question`, source `modal`); False when the answer no
    longer exists."""
    return label_question(
        repo,
        answer_id,
        agent_id=agent_id,
        intent=correction.intent,
        answer=correction.better_answer,
        oos=out_of_scope_label,
        source="modal",
    )


def register(app: AsyncApp, deps: Deps) -> None:
    """Listen to the correction modal's submission; acknowledge any other view payload."""

    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        user = body.get("user", {}).get("id") if isinstance(body.get("user"), dict) else None
        target = blocks.CorrectionTarget.from_metadata(view.get("private_metadata"))
        correction = parse_correction(view)
        if not isinstance(user, str) or target is None or correction is None:
            await ack()
            return
        if not await deps.agents.can_label(client, user):
            await ack(response_action="errors", errors={blocks.INTENT_BLOCK: texts.NOT_AN_AGENT})
            return
        try:
            stored = await asyncio.to_thread(
                store_correction,
                deps.repo,
                target.answer_id,
                agent_id=user,
                correction=correction,
                out_of_scope_label=deps.options.out_of_scope_label,
            )
        except StorageError as exc:
            logger.warning("correction of answer %s not stored: %s", target.answer_id, exc)
            await ack(response_action="errors", errors={blocks.INTENT_BLOCK: texts.CORRECTION_FAILED})
            return
        if not stored:
            await ack(response_action="errors", errors={blocks.INTENT_BLOCK: texts.ANSWER_GONE})
            return
        await ack()
        await post_ephemeral(
            client, channel=target.channel_id, user=user, text=texts.CORRECTION_SAVED, thread_ts=target.thread_ts
        )

    async def on_other(ack: AsyncAck) -> None:
        await ack()

    app.view(blocks.CORRECTION_CALLBACK)(on_submit)
    app.view(re.compile(".*"))(on_other)
    app.view_closed(re.compile(".*"))(on_other)
