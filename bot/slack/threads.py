"""Looking up the conversation behind an answer button (sync; run in a worker thread)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.slack.events import ButtonPress
from storage.models import Answer, Conversation
from storage.repository import Repository


@dataclass(frozen=True)
class AnswerThread:
    """A stored answer with its conversation, the question it answered, and whether it was handed off."""

    answer: Answer
    conversation: Conversation
    question: str
    handed_off: bool


def answer_thread(repo: Repository, press: ButtonPress) -> AnswerThread | None:
    """The answer a button belongs to, checked against the thread it was clicked in; `None` if unknown."""
    answer = repo.get_answer(press.answer_id)
    if answer is None:
        return None
    conversation = repo.find_conversation(team_id=press.team_id, channel_id=press.channel_id, thread_ts=press.thread_ts)
    if conversation is None or conversation.id is None or conversation.id != answer.conversation_id:
        return None
    messages = repo.messages(conversation.id)
    question = next((m.text for m in messages if m.id == answer.question_id), "")
    return AnswerThread(answer, conversation, question, bool(repo.handoffs(conversation.id)))


def predicted_intent(answer: Answer, out_of_scope_label: str) -> str | None:
    """What the bot effectively predicted: its intent, or out of scope when it handed off."""
    return out_of_scope_label if answer.source == "handoff" else answer.intent
