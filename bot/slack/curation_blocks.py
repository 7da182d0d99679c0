"""Block Kit for the agents' work lists: the review queue (App Home), new-intent proposals (agents' channel and
App Home), the modal that names a new intent, and the nightly digest. Pure functions, no I/O."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot import digest
from bot.curation import intent_name
from bot.slack import texts
from bot.slack.blocks import Block, escape, intent_select, mrkdwn, plain
from storage.models import Proposal
from storage.repository import QueueEntry

ACTION_REVIEW_LABEL = "review_label"
REVIEW_BLOCK_PREFIX = "review:"
NEW_INTENT = "__new_intent__"
ACTION_PROPOSAL_ACCEPT = "proposal_accept"
ACTION_PROPOSAL_DISMISS = "proposal_dismiss"
NEW_INTENT_CALLBACK = "new_intent"
NAME_BLOCK = NAME_ACTION = "intent_name"
ANSWER_BLOCK = ANSWER_ACTION = "intent_answer"
QUEUE_SHOWN = 5
PROPOSALS_SHOWN = 3
TYPICAL_SHOWN = 5
QUESTION_CHARS = 300


@dataclass(frozen=True)
class NewIntentTarget:
    """What the new-intent modal names: a queued question (`answer_id`) or a proposal (`proposal_id`), and the
    channel message to update once done (a proposal posted in the agents' channel)."""

    answer_id: int | None = None
    proposal_id: int | None = None
    channel_id: str | None = None
    message_ts: str | None = None

    def to_metadata(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if v is not None})

    @classmethod
    def from_metadata(cls, raw: object) -> NewIntentTarget | None:
        try:
            data = json.loads(raw) if isinstance(raw, str) else None
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        ids = {k: data.get(k) for k in ("answer_id", "proposal_id")}
        where = {k: data.get(k) for k in ("channel_id", "message_ts")}
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in ids.values()):
            return None
        if not all(v is None or (isinstance(v, str) and len(v) <= 64) for v in where.values()):
            return None
        if (ids["answer_id"] is None) == (ids["proposal_id"] is None):
            return None
        return cls(**ids, **where)


def _quote(question: str) -> str:
    """A question as one quoted mrkdwn line, escaped and then cut (so escaping cannot push a section past
    Slack's 3,000 characters: five of these stay under 2,000)."""
    line = escape(question).replace("\n", " ")
    return "> " + (line if len(line) <= QUESTION_CHARS else line[: QUESTION_CHARS - 1] + "…")


# --- review queue -------------------------------------------------------------------------------------
def review_blocks(
    entries: Sequence[QueueEntry], *, waiting: int, intents: Sequence[str], out_of_scope_label: str
) -> list[Block]:
    """The App Home's review queue: the first questions, each with a one-click label picker."""
    out: list[Block] = [{"type": "section", "text": mrkdwn(texts.REVIEW_HEADER.format(waiting=waiting))}]
    if not entries:
        out.append({"type": "context", "elements": [mrkdwn(texts.REVIEW_EMPTY)]})
    for entry in entries[:QUEUE_SHOWN]:
        guesses = [(str(label), float(p)) for label, p in entry.item.guesses]
        first = [(f"{label} ({p:.0%})", label) for label, p in guesses] + [(texts.NEW_INTENT_OPTION, NEW_INTENT)]
        select = intent_select(intents, out_of_scope_label, action_id=ACTION_REVIEW_LABEL, first=first)
        select["placeholder"] = plain(texts.REVIEW_PLACEHOLDER)
        details = texts.REVIEW_DETAILS.format(
            source=entry.answer.source, reasons=", ".join(entry.item.reasons) or texts.REVIEW_NO_REASON
        )
        out.append(
            {
                "type": "section",
                "block_id": f"{REVIEW_BLOCK_PREFIX}{entry.answer.id}",
                "text": mrkdwn(_quote(entry.question)),
                "accessory": select,
            }
        )
        out.append({"type": "context", "elements": [mrkdwn(escape(details))]})
    return out


# --- proposals ------------------------------------------------------------------------------------------
def proposal_blocks(proposal: Proposal) -> list[Block]:
    """A waiting proposal: "N questions like these have no intent: make it one?", its typical questions, buttons."""
    lines = "\n".join(_quote(q) for q in proposal.typical[:TYPICAL_SHOWN])
    header = texts.PROPOSAL_HEADER.format(n=len(proposal.answer_ids))
    near = texts.PROPOSAL_NEAREST.format(intent=escape(proposal.nearest_intent or "none"))
    value = str(proposal.id)
    return [
        {"type": "section", "text": mrkdwn(f"{header}\n{lines}")},
        {"type": "context", "elements": [mrkdwn(near)]},
        {
            "type": "actions",
            "block_id": f"proposal:{proposal.id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": ACTION_PROPOSAL_ACCEPT,
                    "style": "primary",
                    "text": plain(texts.PROPOSAL_ACCEPT),
                    "value": value,
                },
                {
                    "type": "button",
                    "action_id": ACTION_PROPOSAL_DISMISS,
                    "text": plain(texts.PROPOSAL_DISMISS),
                    "value": value,
                },
            ],
        },
    ]


def proposal_fallback(proposal: Proposal) -> str:
    return texts.PROPOSAL_HEADER.format(n=len(proposal.answer_ids)).replace("*", "")


def decided_blocks(proposal: Proposal) -> list[Block]:
    """A decided proposal (its buttons gone): who accepted it as which intent, or dismissed it."""
    lines = "\n".join(_quote(q) for q in proposal.typical[:TYPICAL_SHOWN])
    who = f"<@{proposal.decided_by}>" if proposal.decided_by else "an agent"
    if proposal.status == "accepted":
        outcome = texts.PROPOSAL_ACCEPTED.format(who=who, intent=escape(proposal.intent or ""))
    else:
        outcome = texts.PROPOSAL_DISMISSED.format(who=who)
    header = texts.PROPOSAL_HEADER.format(n=len(proposal.answer_ids))
    return [
        {"type": "section", "text": mrkdwn(f"{header}\n{lines}")},
        {"type": "context", "elements": [mrkdwn(outcome)]},
    ]


def proposals_home_blocks(proposals: Sequence[Proposal]) -> list[Block]:
    """The App Home's waiting proposals (the first few, with their buttons)."""
    out: list[Block] = [{"type": "section", "text": mrkdwn(texts.PROPOSALS_HOME.format(n=len(proposals)))}]
    for proposal in proposals[:PROPOSALS_SHOWN]:
        out += proposal_blocks(proposal)
    return out


def new_intent_modal(target: NewIntentTarget, *, questions: Sequence[str], nearest: str | None = None) -> Block:
    """The modal in which an agent names a new intent and writes its answer."""
    shown = "\n".join(_quote(q) for q in questions[:TYPICAL_SHOWN])
    blocks: list[Block] = [{"type": "section", "text": mrkdwn(texts.NEW_INTENT_QUESTIONS + "\n" + shown)}]
    if nearest:
        blocks.append({"type": "context", "elements": [mrkdwn(texts.PROPOSAL_NEAREST.format(intent=escape(nearest)))]})
    blocks += [
        {
            "type": "input",
            "block_id": NAME_BLOCK,
            "label": plain(texts.NEW_INTENT_NAME),
            "hint": plain(texts.NEW_INTENT_NAME_HINT),
            "element": {"type": "plain_text_input", "action_id": NAME_ACTION, "max_length": 64},
        },
        {
            "type": "input",
            "block_id": ANSWER_BLOCK,
            "label": plain(texts.NEW_INTENT_ANSWER),
            "hint": plain(texts.NEW_INTENT_ANSWER_HINT),
            "element": {"type": "plain_text_input", "action_id": ANSWER_ACTION, "multiline": True, "max_length": 3000},
        },
    ]
    return {
        "type": "modal",
        "callback_id": NEW_INTENT_CALLBACK,
        "private_metadata": target.to_metadata(),
        "title": plain(texts.NEW_INTENT_TITLE),
        "submit": plain(texts.NEW_INTENT_SUBMIT),
        "close": plain(texts.MODAL_CLOSE),
        "blocks": blocks,
    }


def parse_new_intent(view: Any) -> tuple[str, str] | None:
    """The (intent name, answer) submitted in the new-intent modal, the name as a label; None when malformed."""
    values = view.get("state", {}).get("values", {}) if isinstance(view, dict) else None
    if not isinstance(values, dict):
        return None
    raw_name = values.get(NAME_BLOCK, {}).get(NAME_ACTION, {}).get("value")
    raw_answer = values.get(ANSWER_BLOCK, {}).get(ANSWER_ACTION, {}).get("value")
    if not isinstance(raw_name, str) or not isinstance(raw_answer, str):
        return None
    return intent_name(raw_name), raw_answer.strip()


# --- digest -------------------------------------------------------------------------------------------------
def digest_blocks(content: digest.Digest | None) -> list[Block]:
    """The nightly digest as one section (App Home and the agents' channel)."""
    if content is None:
        return [{"type": "section", "text": mrkdwn(texts.DIGEST_NONE)}]
    return [{"type": "section", "text": mrkdwn("\n".join(digest.lines(content)))}]
