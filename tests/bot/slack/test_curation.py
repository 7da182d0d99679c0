"""The agents' work lists through the Slack stand-in: the review queue in the App Home (one-click label, new
intent in a modal), new-intent proposals in the agents' channel (posted by the nightly job, accepted in a modal
or dismissed), and the digest posted once per day. Each checked in the store."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot import digest
from bot.nightly import post_digest
from bot.notify import AgentChannel
from bot.slack import curation_blocks as cb
from bot.slack import texts
from storage.models import Proposal
from storage.repository import NewReviewItem, Repository
from tests.bot.slack import payloads
from tests.bot.slack.harness import AGENT, AGENT_CHANNEL, CUSTOMER, BotUnderTest, quiesce
from tests.bot.slack.helpers import ask
from tests.bot.slack.standin import TEAM_ID, SlackStandIn
from tests.factories import settings_for


def home_action(
    action_id: str, *, user: str, block_id: str, value: str, select: bool = False, channel: str | None = None
) -> dict[str, Any]:
    """A `block_actions` payload from the App Home (or, with `channel`, a message there): a select's choice or a
    button's value."""
    action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "action_ts": str(time.time())}
    if select:
        action |= {
            "type": "static_select",
            "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
        }
    else:
        action |= {"type": "button", "value": value}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM_ID},
        "api_app_id": payloads.APP_ID,
        "token": "verification-token",
        "trigger_id": f"{int(time.time())}.trigger.{uuid.uuid4().hex[:8]}",
        "team": {"id": TEAM_ID, "domain": "standin"},
        "actions": [action],
    }
    if channel is None:
        payload |= {"container": {"type": "view", "view_id": "VHOME"}, "view": {"id": "VHOME", "type": "home"}}
    else:
        ts = "1700000099.000100"
        payload |= {
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "channel": {"id": channel, "name": "agents"},
            "message": {"type": "message", "ts": ts, "text": "…"},
        }
    return payload


async def handed_off(bot: BotUnderTest, standin: SlackStandIn, store: Repository, text: str) -> int:
    """Ask a question the fake engine hands off (no buttons on the reply); the id of its stored answer."""
    before = len(standin.calls_to("chat.postMessage"))
    await bot.event(payloads.message(text, channel="DCUSTOMER", user=CUSTOMER))
    await standin.wait_for_call("chat.postMessage", n=before + 1)
    await quiesce()
    logged = store.answers_between(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1))
    [answer_id] = [item.answer.id for item in logged if item.question.text == text]
    assert answer_id is not None
    return answer_id


def new_intent_values(name: str, answer: str) -> dict[str, Any]:
    return {
        cb.NAME_BLOCK: {cb.NAME_ACTION: {"type": "plain_text_input", "value": name}},
        cb.ANSWER_BLOCK: {cb.ANSWER_ACTION: {"type": "plain_text_input", "value": answer}},
    }


def _home_of(standin: SlackStandIn, user: str) -> dict[str, Any]:
    return [c.params["view"] for c in standin.calls_to("views.publish") if c.params["user_id"] == user][-1]


def _queued_block(view: dict[str, Any], answer_id: int) -> dict[str, Any] | None:
    return next((b for b in view["blocks"] if b.get("block_id") == f"{cb.REVIEW_BLOCK_PREFIX}{answer_id}"), None)


async def test_the_review_queue_in_the_app_home_labels_in_one_click(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    unsure = await handed_off(bot, standin, store, "something odd with my account")
    other = await ask(bot, standin, "password?")
    store.replace_review_queue(
        [
            NewReviewItem(unsure, 1.4, [("billing", 0.41), ("reset_password", 0.38)], ["handed off"]),
            NewReviewItem(other.answer_id, 0.3, [("reset_password", 0.9)], []),
        ],
        model_version="v-test-1",
    )
    await bot.event(payloads.home_opened(AGENT))
    await standin.wait_for_call("views.publish")
    view = _home_of(standin, AGENT)
    queued = _queued_block(view, unsure)
    assert queued is not None and "something odd with my account" in queued["text"]["text"]
    values = [o["value"] for o in queued["accessory"]["options"]]
    assert values[:3] == ["billing", "reset_password", cb.NEW_INTENT] and "out_of_scope" in values
    assert "2 questions waiting" in json.dumps(view["blocks"]) and "handed off" in json.dumps(view["blocks"])

    block = f"{cb.REVIEW_BLOCK_PREFIX}{unsure}"
    await bot.send(home_action(cb.ACTION_REVIEW_LABEL, user=CUSTOMER, block_id=block, value="billing", select=True))
    await bot.send(home_action(cb.ACTION_REVIEW_LABEL, user=AGENT, block_id=block, value="billing", select=True))
    await standin.wait_for_call("views.publish", n=2)
    await quiesce()
    [label] = store.ratings(unsure)  # the customer's click stored nothing
    assert (label.rater_id, label.rater_role, label.corrected_intent, label.source) == (
        AGENT,
        "agent",
        "billing",
        "review",
    )
    notes = [c.params["text"] for c in standin.calls_to("chat.postMessage") if c.params["channel"] in (AGENT, CUSTOMER)]
    assert texts.NOT_AN_AGENT_LABEL in notes and texts.REVIEW_SAVED.format(intent="billing") in notes
    assert _queued_block(_home_of(standin, AGENT), unsure) is None  # labelled: out of the queue
    assert [e.answer.id for e in store.review_queue()] == [other.answer_id]


async def test_a_new_intent_from_the_queue_is_named_in_a_modal(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    asked = await handed_off(bot, standin, store, "my card arrived cracked")
    store.replace_review_queue([NewReviewItem(asked, 1.0, [("billing", 0.3)], [])], model_version=None)
    block = f"{cb.REVIEW_BLOCK_PREFIX}{asked}"
    await bot.send(home_action(cb.ACTION_REVIEW_LABEL, user=AGENT, block_id=block, value=cb.NEW_INTENT, select=True))
    [opened] = await standin.wait_for_call("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == cb.NEW_INTENT_CALLBACK and "my card arrived cracked" in json.dumps(view["blocks"])

    bad = await bot.send(payloads.view_submission(view, user=AGENT, values=new_intent_values("  !! ", "x")))
    assert bad.status == 200 and cb.NAME_BLOCK in bad.text and store.ratings(asked) == []
    reply = await bot.send(
        payloads.view_submission(view, user=AGENT, values=new_intent_values("Damaged card", "We send a new one."))
    )
    assert reply.status == 200 and reply.text == ""
    await quiesce()
    [label] = store.ratings(asked)
    assert (label.corrected_intent, label.corrected_answer, label.source) == (
        "damaged_card",
        "We send a new one.",
        "review",
    )


async def _post_proposal(standin: SlackStandIn, store: Repository, tmp_path: Path, members: list[int]) -> Proposal:
    """What the nightly job does with a new proposal: post it to the agents' channel, remember where."""
    proposal = store.add_proposal(
        members, ["card arrived cracked", "my card is broken"], cohesion=0.8, nearest_intent="billing"
    )
    settings = settings_for(
        tmp_path, slack_bot_token="xoxb-test", agent_channel_id=AGENT_CHANNEL, slack_api_base_url=standin.api_url
    )
    channel = AgentChannel(settings)
    ts = await asyncio.to_thread(channel.post, cb.proposal_fallback(proposal), cb.proposal_blocks(proposal))
    assert ts is not None and proposal.id is not None
    store.set_proposal_message(proposal.id, channel_id=AGENT_CHANNEL, slack_ts=ts)
    found = store.get_proposal(proposal.id)
    assert found is not None
    return found


async def test_a_proposal_posted_to_the_agents_channel_is_accepted_in_a_modal(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository, tmp_path: Path
) -> None:
    members = [await handed_off(bot, standin, store, f"my card is broken {i}") for i in range(3)]
    proposal = await _post_proposal(standin, store, tmp_path, members)
    [posted] = [c for c in standin.calls_to("chat.postMessage") if "no intent" in c.params["text"]]
    assert posted.params["channel"] == AGENT_CHANNEL
    assert "3 questions like these have no intent: make it one?" in json.dumps(posted.params["blocks"])

    value = str(proposal.id)
    await bot.send(
        home_action(cb.ACTION_PROPOSAL_ACCEPT, user=CUSTOMER, block_id="p", value=value, channel=AGENT_CHANNEL)
    )
    await bot.send(home_action(cb.ACTION_PROPOSAL_ACCEPT, user=AGENT, block_id="p", value=value, channel=AGENT_CHANNEL))
    [opened] = await standin.wait_for_call("views.open")
    assert [c.params["text"] for c in standin.calls_to("chat.postEphemeral")] == [texts.NOT_AN_AGENT_LABEL]
    view = opened.params["view"]
    assert "card arrived cracked" in json.dumps(view["blocks"])
    reply = await bot.send(
        payloads.view_submission(view, user=AGENT, values=new_intent_values("damaged_card", "We send a new card."))
    )
    assert reply.status == 200 and reply.text == ""
    [update] = await standin.wait_for_call("chat.update")
    assert update.params["ts"] == proposal.slack_ts and "damaged_card" in json.dumps(update.params["blocks"])
    assert "actions" not in json.dumps(update.params["blocks"])  # the buttons are gone
    decided = store.get_proposal(value and int(value))
    assert decided is not None and (decided.status, decided.intent, decided.decided_by) == (
        "accepted",
        "damaged_card",
        AGENT,
    )
    labels = [(r.corrected_intent, r.source) for m in members for r in store.ratings(m)]
    assert labels == [("damaged_card", "discovery")] * 3

    again = await bot.send(
        payloads.view_submission(view, user=AGENT, values=new_intent_values("other_name", "x"))
    )  # a second agent's late submit: told so, nothing stored
    await quiesce()
    assert again.status == 200 and len([r for m in members for r in store.ratings(m)]) == 3
    notes = [c.params["text"] for c in standin.calls_to("chat.postMessage") if c.params["channel"] == AGENT]
    assert notes[-1] == texts.PROPOSAL_GONE


async def test_a_dismissed_proposal_is_closed_and_labels_nothing(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository, tmp_path: Path
) -> None:
    members = [await handed_off(bot, standin, store, f"weather in Paris {i}") for i in range(2)]
    proposal = await _post_proposal(standin, store, tmp_path, members)
    await bot.send(
        home_action(cb.ACTION_PROPOSAL_DISMISS, user=AGENT, block_id="p", value=str(proposal.id), channel=AGENT_CHANNEL)
    )
    [update] = await standin.wait_for_call("chat.update")
    assert "Dismissed by" in json.dumps(update.params["blocks"])
    assert proposal.id is not None
    decided = store.get_proposal(proposal.id)
    assert decided is not None and decided.status == "dismissed"
    assert all(store.ratings(m) == [] for m in members)


async def test_the_digest_is_posted_once_per_day_and_shown_in_the_app_home(
    bot: BotUnderTest, standin: SlackStandIn, store: Repository, tmp_path: Path
) -> None:
    await ask(bot, standin, "password?")
    await handed_off(bot, standin, store, "something else entirely")
    settings = settings_for(
        tmp_path, slack_bot_token="xoxb-test", agent_channel_id=AGENT_CHANNEL, slack_api_base_url=standin.api_url
    )
    channel = AgentChannel(settings)
    now = datetime.now(UTC) + timedelta(seconds=1)
    first = digest.build(store, now=now, model="promoted v2")
    assert (first.questions, first.automated, first.handed_off) == (2, 1, 1)
    ts = await asyncio.to_thread(post_digest, store, channel, first, now=now)
    rerun = digest.build(store, now=now, model="nothing to do")
    again = await asyncio.to_thread(post_digest, store, channel, rerun, now=now)  # the same night, run again

    digests = [c for c in standin.calls_to("chat.postMessage") if "Nightly digest" in c.params["text"]]
    assert len(digests) == 1 and ts == again
    [update] = standin.calls_to("chat.update")
    assert update.params["ts"] == ts and "nothing to do" in update.params["text"]
    assert "automation rate 50%" in digests[0].params["text"] and "hand-off rate 50%" in digests[0].params["text"]

    await bot.event(payloads.home_opened(AGENT))
    await standin.wait_for_call("views.publish")
    assert "Nightly digest" in json.dumps(_home_of(standin, AGENT)["blocks"])
    assert "nothing to do" in json.dumps(_home_of(standin, AGENT)["blocks"])
