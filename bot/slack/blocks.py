"""Pure Block Kit builders: plain data in, Slack JSON (dicts) out. No I/O, no Slack client."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.answer import EngineAnswer
from bot.clarify import SOMETHING_ELSE
from bot.slack import texts

Block = dict[str, Any]

# Interactive ids shared by the builders and the listeners that handle them.
ACTION_HELPFUL = "answer_helpful"
ACTION_NOT_HELPFUL = "answer_not_helpful"
ACTION_HUMAN = "answer_handoff"
ACTION_CORRECT = "answer_correct"  # the button on answers posted before the shortcut (still honoured)
CORRECT_SHORTCUT = "correct_answer"  # the agents' message shortcut on the bot's reply (bot/slack_manifest.yaml)
ACTION_CLARIFY_PREFIX = "clarify:"
"""A clarifying question's buttons: `clarify:<intent>`, or `clarify:something_else`; the value is the answer id."""
CLARIFY_ACTIONS_BLOCK = "clarify_actions"
BUTTON_TEXT_MAX = 75
ANSWER_ACTIONS_BLOCK = "answer_actions"
CORRECTION_CALLBACK = "correct_answer"
INTENT_BLOCK = "intent"
INTENT_ACTION = "intent"
BETTER_ANSWER_BLOCK = "better_answer"
BETTER_ANSWER_ACTION = "better_answer"

SECTION_MAX = 3000  # Slack's limit for a section's text
FALLBACK_MAX = 3000  # notification text; Slack truncates beyond 40k but shorter reads better
OPTION_TEXT_MAX = 75
OPTIONS_PER_GROUP = 100
MAX_BLOCKS = 50


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str, *, emoji: bool = True) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": emoji}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def sections(text: str, *, limit: int = SECTION_MAX) -> list[Block]:
    """Split `text` into section blocks of at most `limit` characters, preferring paragraph breaks."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return [{"type": "section", "text": mrkdwn(chunk)} for chunk in chunks]


def _button(text: str, action_id: str, value: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "text": plain(text), "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


def percent(value: float | None) -> str:
    """`0.934` -> `93%`; `None` -> `n/a`."""
    return "n/a" if value is None else f"{value:.0%}"


def fallback_text(text: str) -> str:
    """The plain-text `text` that accompanies blocks (notifications, screen readers)."""
    text = text.strip() or "…"
    return text if len(text) <= FALLBACK_MAX else text[: FALLBACK_MAX - 1] + "…"


def answer_details(*, source: str, intent: str | None, confidence: float | None, model_version: str | None) -> str:
    """The agents' line about an answer: where it came from, which intent, how sure, which model."""
    parts = [texts.SOURCE_LABELS.get(source, source)]
    if intent:
        parts.append(f"intent `{escape(intent)}`")
    if confidence is not None:
        parts.append(f"confidence {percent(confidence)}")
    if model_version:
        parts.append(f"model {escape(model_version)}")
    return " · ".join(parts)


def answer_blocks(answer_id: int | None, answer: EngineAnswer, *, truncated_at: int | None = None) -> list[Block]:
    """The customer's view of the bot's reply: the answer text, its sources and the rating / hand-off buttons.

    Nothing for agents only: no intent name, confidence, model version or correction button (agents correct
    through the message shortcut `CORRECT_SHORTCUT`, whose modal shows those details).

    Args:
        answer_id: the stored answer's id, carried in every button's value (None: not stored, the database is
            away: no buttons; reactions still rate it once the answer reaches the database).
        answer: what the engine decided.
        truncated_at: when the question was cut for the model, the limit (mentioned to the customer).
    """
    body = escape(answer.text) if answer.source == "retrieval" else answer.text
    blocks = sections(body or "…")
    if answer.sources and answer.source != "handoff":
        lines = []
        for doc in answer.sources[:5]:
            title = escape(doc.title or doc.doc_id)
            lines.append(f"• <{doc.url}|{title}>" if doc.url else f"• {title}")
        blocks.append({"type": "section", "text": mrkdwn(texts.SOURCES_HEADER + "\n" + "\n".join(lines))})
    blocks = blocks[: MAX_BLOCKS - 2]
    if truncated_at is not None:
        blocks.append({"type": "context", "elements": [mrkdwn(texts.TRUNCATED_NOTE.format(limit=truncated_at))]})
    if answer_id is None or answer.source == "handoff":  # a hand-off: a person replies next, nothing to rate
        return blocks
    value = str(answer_id)
    if answer.source == "clarify":
        buttons = clarify_buttons(answer_id, answer)
        blocks.append({"type": "actions", "block_id": CLARIFY_ACTIONS_BLOCK, "elements": buttons})
        return blocks
    buttons = [
        _button(texts.BUTTON_HELPFUL, ACTION_HELPFUL, value, "primary"),
        _button(texts.BUTTON_NOT_HELPFUL, ACTION_NOT_HELPFUL, value),
        _button(texts.BUTTON_HUMAN, ACTION_HUMAN, value),
    ]
    blocks.append({"type": "actions", "block_id": ANSWER_ACTIONS_BLOCK, "elements": buttons})
    return blocks


def clarify_buttons(answer_id: int, answer: EngineAnswer) -> list[Block]:
    """One button per offered intent (its question as the label), then "Something else"."""
    value = str(answer_id)
    buttons = [
        _button(_clip(question, BUTTON_TEXT_MAX), f"{ACTION_CLARIFY_PREFIX}{intent}", value)
        for intent, question in answer.candidates
    ]
    buttons.append(_button(texts.BUTTON_SOMETHING_ELSE, f"{ACTION_CLARIFY_PREFIX}{SOMETHING_ELSE}", value))
    return buttons


def clarified_blocks(text: str, choice: str) -> list[Block]:
    """The clarifying question once answered: its text and the choice, without buttons."""
    return [*sections(text or "…"), {"type": "context", "elements": [mrkdwn(escape(choice))]}]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class CorrectionTarget:
    """What the correction modal is about; round-trips through the view's `private_metadata`."""

    answer_id: int
    channel_id: str
    thread_ts: str
    predicted_intent: str | None

    def to_metadata(self) -> str:
        return json.dumps({"a": self.answer_id, "c": self.channel_id, "t": self.thread_ts, "p": self.predicted_intent})

    @classmethod
    def from_metadata(cls, raw: object) -> CorrectionTarget | None:
        """Parse `private_metadata`; `None` when it is missing or malformed."""
        if not isinstance(raw, str):
            return None
        try:
            data = json.loads(raw)
            answer_id = int(data["a"])
            channel, thread, predicted = data["c"], data["t"], data.get("p")
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(channel, str) or not isinstance(thread, str):
            return None
        return cls(answer_id, channel, thread, predicted if isinstance(predicted, str) else None)


def option(label: str, value: str) -> dict[str, Any]:
    text = label if len(label) <= OPTION_TEXT_MAX else label[: OPTION_TEXT_MAX - 1] + "…"
    return {"text": plain(text, emoji=False), "value": value[:150]}


def intent_select(
    intents: Sequence[str],
    out_of_scope_label: str,
    *,
    action_id: str,
    initial: str | None = None,
    first: Sequence[tuple[str, str]] = (),
) -> Block:
    """A static select of the intents: `first` (label, value) options, "out of scope", then every intent (in groups
    of 100 when there are more); `initial` is preselected when it is one of them."""
    labels = [name for name in dict.fromkeys(intents) if name and name != out_of_scope_label]
    head = [option(label, value) for label, value in first]
    taken = {o["value"] for o in head}
    options = head + [
        o
        for o in [option(texts.OUT_OF_SCOPE_OPTION, out_of_scope_label)] + [option(n, n) for n in labels]
        if o["value"] not in taken
    ]
    select: Block = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": plain(texts.MODAL_INTENT_PLACEHOLDER),
    }
    if len(options) <= OPTIONS_PER_GROUP:
        select["options"] = options
    else:
        select["option_groups"] = [
            {"label": plain(f"{i + 1}–{min(i + OPTIONS_PER_GROUP, len(options))}"), "options": options[i : i + 100]}
            for i in range(0, len(options), OPTIONS_PER_GROUP)
        ][:100]
    if initial:
        chosen = [o for o in options if o["value"] == initial[:150]]
        if chosen:
            select["initial_option"] = chosen[0]
    return select


def correction_modal(
    target: CorrectionTarget,
    *,
    intents: Sequence[str],
    out_of_scope_label: str,
    question: str | None,
    confidence: float | None,
    details: str = "",
) -> Block:
    """The agents' correction modal: the question, what the bot answered (`details`: `answer_details`), the
    right intent (or out of scope), a better answer."""
    predicted = target.predicted_intent
    select = intent_select(intents, out_of_scope_label, action_id=INTENT_ACTION, initial=predicted)
    blocks: list[Block] = []
    if question:
        blocks += sections(texts.MODAL_QUESTION.format(question=escape(question[:2800])))
    if predicted:
        context = [mrkdwn(texts.MODAL_PREDICTED.format(intent=escape(predicted), confidence=percent(confidence)))]
        blocks.append({"type": "context", "elements": [*context, *([mrkdwn(details)] if details else [])]})
    blocks.append(
        {"type": "input", "block_id": INTENT_BLOCK, "label": plain(texts.MODAL_INTENT_LABEL), "element": select}
    )
    blocks.append(
        {
            "type": "input",
            "block_id": BETTER_ANSWER_BLOCK,
            "optional": True,
            "label": plain(texts.MODAL_ANSWER_LABEL),
            "hint": plain(texts.MODAL_ANSWER_HINT),
            "element": {
                "type": "plain_text_input",
                "action_id": BETTER_ANSWER_ACTION,
                "multiline": True,
                "max_length": 3000,
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": CORRECTION_CALLBACK,
        "private_metadata": target.to_metadata(),
        "title": plain(texts.MODAL_TITLE),
        "submit": plain(texts.MODAL_SUBMIT),
        "close": plain(texts.MODAL_CLOSE),
        "blocks": blocks,
    }


def handoff_guess(answer: EngineAnswer | None, *, intent: str | None, confidence: float | None) -> str:
    """The bot's best guess, in words, for the agents' hand-off message."""
    if answer is not None and answer.sources:
        top = answer.sources[0]
        doc = f"<{top.url}|{escape(top.title)}>" if top.url else escape(top.title)
        if intent:
            return f"`{escape(intent)}` ({percent(confidence)}); closest article: {doc}"
        return f"closest article: {doc}"
    if intent:
        return f"`{escape(intent)}` ({percent(confidence)})"
    return ""


def handoff_agent_blocks(*, user_id: str, reason: str, question: str, guess: str, link: str) -> list[Block]:
    """The message posted to the agents' channel when a conversation is handed off."""
    reason_text = texts.HANDOFF_REASONS.get(reason, reason)
    quoted = escape(question[:2500]).replace("\n", "\n>")
    lines = [
        texts.AGENT_HANDOFF_HEADER.format(user=user_id, reason=reason_text),
        texts.AGENT_HANDOFF_QUESTION.format(question=quoted),
        texts.AGENT_HANDOFF_GUESS.format(guess=guess) if guess else texts.AGENT_HANDOFF_NO_GUESS,
        texts.AGENT_HANDOFF_LINK.format(link=link),
    ]
    return [{"type": "section", "text": mrkdwn(line)} for line in lines]


@dataclass(frozen=True)
class PeriodStats:
    """The counts shown for one period on the agents' App Home."""

    label: str
    questions: int
    answered: int
    handed_off: int
    rated: int
    helpful: int


def _rate(part: int, whole: int) -> str:
    return percent(part / whole) if whole else "n/a"


def _format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict | list):
        return escape(json.dumps(value)[:200])
    return escape(str(value))


def model_lines(model_info: Mapping[str, Any], *, limit: int = 20) -> list[str]:
    """`key: value` lines for the model section, nested metric dicts flattened one level."""
    lines: list[str] = []
    for key, value in model_info.items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                if not isinstance(inner, Mapping | list):
                    lines.append(f"{escape(str(key))}.{escape(str(sub))}: `{_format_value(inner)}`")
        else:
            lines.append(f"{escape(str(key))}: `{_format_value(value)}`")
    return lines[:limit]


def agent_home_view(
    periods: Sequence[PeriodStats] | None,
    *,
    unhelpful_by_intent: Sequence[tuple[str, int]],
    model_info: Mapping[str, Any],
) -> Block:
    """The agents' App Home: volumes and rates per period, weak intents, the model in production."""
    blocks: list[Block] = [
        {"type": "header", "text": plain(texts.HOME_TITLE)},
        {"type": "context", "elements": [mrkdwn(texts.HOME_AGENT_INTRO)]},
    ]
    if periods is None:
        blocks.append({"type": "section", "text": mrkdwn(texts.HOME_STATS_FAILED)})
    else:
        fields = []
        for period in periods:
            counts = texts.HOME_COUNTS.format(
                questions=period.questions,
                answered=period.answered,
                answered_rate=_rate(period.answered, period.questions),
                handed_off=period.handed_off,
                handoff_rate=_rate(period.handed_off, period.questions),
                rated=period.rated,
                helpful=period.helpful,
                helpful_rate=_rate(period.helpful, period.rated),
            )
            fields.append(mrkdwn(texts.HOME_PERIOD.format(label=period.label) + "\n" + counts))
        blocks.append({"type": "section", "fields": fields[:10]})
        blocks.append({"type": "divider"})
        weak = [f"• `{escape(intent)}`: {count}" for intent, count in list(unhelpful_by_intent)[:10]]
        blocks.append(
            {
                "type": "section",
                "text": mrkdwn(texts.HOME_UNHELPFUL + "\n" + ("\n".join(weak) or texts.HOME_UNHELPFUL_NONE)),
            }
        )
    blocks.append({"type": "divider"})
    lines = model_lines(model_info)
    blocks.append(
        {"type": "section", "text": mrkdwn(texts.HOME_MODEL + "\n" + ("\n".join(lines) or texts.HOME_NO_MODEL))}
    )
    return {"type": "home", "blocks": blocks}


def customer_home_view() -> Block:
    """The App Home everyone who is not an agent sees: what the bot does and how to use it."""
    return {
        "type": "home",
        "blocks": [
            {"type": "header", "text": plain(texts.HOME_TITLE)},
            {"type": "section", "text": mrkdwn(texts.HOME_CUSTOMER)},
        ],
    }
