"""What every listener needs, bundled once by `build_app` (plain values, no Settings)."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from bot.answer import EngineLike
from bot.slack.agents import AgentDirectory
from storage.repository import Repository


@dataclass(frozen=True)
class Deps:
    """The bot's collaborators and configuration, shared by all listeners.

    Args:
        engine: answers questions (sync; listeners run it in a worker thread).
        repo: the store (sync; listeners run it in a worker thread).
        agents: who is a support agent.
        agent_channel_id: where hand-offs are announced (`None`: hand-offs are only stored).
        support_channel_ids: channels whose new top-level messages are questions.
        max_question_chars: longer questions are cut to this many characters for the model and the store.
        out_of_scope_label: the label agents pick when a question is not something the bot should answer.
        model_pool: where the engine runs (`None`: the default thread pool, shared with store calls).
    """

    engine: EngineLike
    repo: Repository
    agents: AgentDirectory
    agent_channel_id: str | None
    support_channel_ids: frozenset[str]
    max_question_chars: int
    out_of_scope_label: str = "out_of_scope"
    model_pool: Executor | None = None
