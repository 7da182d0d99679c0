"""The agents' work lists in Slack: labelling from the review queue (App Home), accepting or dismissing a
new-intent proposal (agents' channel or App Home), and the new-intent modal behind both.

Every label is an agent rating with `corrected_intent`, as a correction in the thread is (sources `review` and
`discovery`), so the next nightly retraining learns it; only agents may label (anyone else is told so and
nothing is stored).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.curation import label_question
from bot.slack import curation_blocks as cb
from bot.slack import texts
from bot.slack.deps import Deps
from bot.slack.listeners import home
from bot.slack.slack_io import CALL_ERRORS, describe, post_ephemeral
from storage.errors import StorageError
from storage.models import Proposal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    """An agent's click on a work-list control (App Home or a channel message)."""

    user_id: str
    value: str
    block_id: str
    trigger_id: str | None
    channel_id: str | None
    message_ts: str | None


def parse_click(body: Any) -> Click | None:
    """The click's user, chosen value (a select's option or a button's value) and where it was; None if malformed."""
    if not isinstance(body, dict):
        return None
    user = body.get("user", {}).get("id") if isinstance(body.get("user"), dict) else None
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
    selected = action.get("selected_option")
    value = selected.get("value") if isinstance(selected, dict) else action.get("value")
    block = action.get("block_id")
    if not isinstance(user, str) or not user or not isinstance(value, str) or not isinstance(block, str):
        return None
    channel = body.get("channel", {}).get("id") if isinstance(body.get("channel"), dict) else None
    message = body.get("message", {}).get("ts") if isinstance(body.get("message"), dict) else None
    trigger = body.get("trigger_id")
    return Click(
        user,
        value,
        block,
        trigger if isinstance(trigger, str) else None,
        channel if isinstance(channel, str) else None,
        message if isinstance(message, str) else None,
    )


async def _tell(client: AsyncWebClient, click: Click, text: str) -> None:
    """An ephemeral note in the channel clicked in; from the App Home, a direct message."""
    channel = click.channel_id or click.user_id
    if click.channel_id:
        await post_ephemeral(client, channel=channel, user=click.user_id, text=text, thread_ts=None)
        return
    try:
        await client.chat_postMessage(channel=click.user_id, text=text)
    except CALL_ERRORS as exc:
        logger.warning("note to %s failed: %s", click.user_id, describe(exc))


async def _show_decided(client: AsyncWebClient, proposal: Proposal) -> None:
    """Replace a posted proposal's buttons by who decided what."""
    if not proposal.channel_id or not proposal.slack_ts:
        return
    try:
        await client.chat_update(
            channel=proposal.channel_id,
            ts=proposal.slack_ts,
            text=cb.proposal_fallback(proposal),
            blocks=cb.decided_blocks(proposal),
        )
    except CALL_ERRORS as exc:
        logger.warning("chat.update of proposal %s failed: %s", proposal.id, describe(exc))


def _id(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def register(app: AsyncApp, deps: Deps) -> None:
    """Listen to the review queue's picker, the proposals' buttons and the new-intent modal (before the catch-alls)."""
    oos = deps.options.out_of_scope_label

    async def agent_click(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> Click | None:
        await ack()
        click = parse_click(body)
        if click is None:
            return None
        if not await deps.agents.can_label(client, click.user_id):
            await _tell(client, click, texts.NOT_AN_AGENT_LABEL)
            return None
        return click

    async def open_modal(client: AsyncWebClient, click: Click, view: dict[str, Any]) -> None:
        if click.trigger_id is None:
            return
        try:
            await client.views_open(trigger_id=click.trigger_id, view=view)
        except CALL_ERRORS as exc:
            logger.warning("views.open of the new-intent modal failed: %s", describe(exc))

    async def on_review_label(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        click = await agent_click(ack, body, client)
        answer_id = _id(click.block_id.removeprefix(cb.REVIEW_BLOCK_PREFIX)) if click else None
        if click is None or answer_id is None:
            return
        if click.value == cb.NEW_INTENT:
            try:
                stored = await asyncio.to_thread(deps.repo.question_text, answer_id)
            except StorageError as exc:
                logger.warning("question of answer %s not read: %s", answer_id, exc)
                await _tell(client, click, texts.LABEL_FAILED)
                return
            await open_modal(
                client, click, cb.new_intent_modal(cb.NewIntentTarget(answer_id=answer_id), questions=[stored or ""])
            )
            return
        try:
            done = await asyncio.to_thread(
                label_question, deps.repo, answer_id, agent_id=click.user_id, intent=click.value, answer=None, oos=oos
            )
        except StorageError as exc:
            logger.warning("review label of answer %s not stored: %s", answer_id, exc)
            await _tell(client, click, texts.LABEL_FAILED)
            return
        await _tell(client, click, texts.REVIEW_SAVED.format(intent=click.value) if done else texts.ANSWER_GONE)
        await home.publish(deps, client, click.user_id)

    async def on_proposal_accept(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        click = await agent_click(ack, body, client)
        proposal_id = _id(click.value) if click else None
        if click is None or proposal_id is None:
            return
        try:
            proposal = await asyncio.to_thread(deps.repo.get_proposal, proposal_id)
        except StorageError as exc:
            logger.warning("proposal %s not read: %s", proposal_id, exc)
            await _tell(client, click, texts.LABEL_FAILED)
            return
        if proposal is None or proposal.status != "waiting":
            await _tell(client, click, texts.PROPOSAL_GONE)
            return
        target = cb.NewIntentTarget(proposal_id=proposal_id, channel_id=click.channel_id, message_ts=click.message_ts)
        modal = cb.new_intent_modal(target, questions=proposal.typical, nearest=proposal.nearest_intent)
        await open_modal(client, click, modal)

    async def on_proposal_dismiss(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        click = await agent_click(ack, body, client)
        proposal_id = _id(click.value) if click else None
        if click is None or proposal_id is None:
            return
        try:
            decided = await asyncio.to_thread(
                deps.repo.decide_proposal, proposal_id, status="dismissed", agent_id=click.user_id
            )
        except StorageError as exc:
            logger.warning("proposal %s not dismissed: %s", proposal_id, exc)
            await _tell(client, click, texts.LABEL_FAILED)
            return
        if decided is None:
            await _tell(client, click, texts.PROPOSAL_GONE)
            return
        await _show_decided(client, decided)
        await home.publish(deps, client, click.user_id)

    async def on_new_intent(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        user = body.get("user", {}).get("id") if isinstance(body.get("user"), dict) else None
        target = cb.NewIntentTarget.from_metadata(view.get("private_metadata"))
        submitted = cb.parse_new_intent(view)
        if not isinstance(user, str) or target is None or submitted is None:
            await ack()
            return
        name, answer = submitted
        if not name or name == oos:
            await ack(response_action="errors", errors={cb.NAME_BLOCK: texts.NEW_INTENT_BAD_NAME})
            return
        if not answer:
            await ack(response_action="errors", errors={cb.ANSWER_BLOCK: texts.NEW_INTENT_NO_ANSWER})
            return
        if not await deps.agents.can_label(client, user):
            await ack(response_action="errors", errors={cb.NAME_BLOCK: texts.NOT_AN_AGENT_LABEL})
            return
        await ack()  # at once (Slack allows 3 s); the write follows, and a failure is told by direct message
        where = Click(user, name, "", None, None, None)
        try:
            if target.proposal_id is not None:
                decided = await asyncio.to_thread(
                    deps.repo.decide_proposal,
                    target.proposal_id,
                    status="accepted",
                    agent_id=user,
                    intent=name,
                    answer=answer,
                )
                done = decided is not None
            else:
                assert target.answer_id is not None
                decided = None
                done = await asyncio.to_thread(
                    label_question, deps.repo, target.answer_id, agent_id=user, intent=name, answer=answer, oos=oos
                )
        except StorageError as exc:
            logger.warning("new intent %s not stored: %s", name, exc)
            await _tell(client, where, texts.LABEL_FAILED)
            return
        if not done:
            await _tell(client, where, texts.PROPOSAL_GONE if target.proposal_id is not None else texts.ANSWER_GONE)
            return
        await _tell(client, where, texts.REVIEW_SAVED.format(intent=name))
        if decided is not None:
            await _show_decided(client, decided)
        await home.publish(deps, client, user)

    app.action(cb.ACTION_REVIEW_LABEL)(on_review_label)
    app.action(cb.ACTION_PROPOSAL_ACCEPT)(on_proposal_accept)
    app.action(cb.ACTION_PROPOSAL_DISMISS)(on_proposal_dismiss)
    app.view(cb.NEW_INTENT_CALLBACK)(on_new_intent)
