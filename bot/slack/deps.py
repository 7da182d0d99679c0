"""What every listener needs, bundled once by `build_app` (plain values, no Settings)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

from bot.answer import EngineLike
from bot.options import ServingOptions
from bot.slack.agents import Agents
from bot.slack.installs import ThreadedInstallations
from bot.slack.intake import Intake
from bot.slack.metrics import Metrics
from storage.repository import Repository


@dataclass
class ServingStatus:
    """What the server knows and the listeners do not: whether Slack is connected (for `/readyz`).

    `probe`, when set (Socket Mode), asks the connection itself: a dropped socket makes the bot unready until
    the SDK has reconnected."""

    slack_connected: bool = False
    probe: Callable[[], Awaitable[bool]] | None = None
    ops_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="supportbot-ops")
    )
    """Where `/readyz`'s database ping and `/metrics`' readings run: one thread, never the listeners' pool."""
    ping: asyncio.Future[None] | None = None
    """The database ping in progress (probes arriving meanwhile wait for it instead of starting another)."""


@dataclass(frozen=True)
class Deps:
    """The bot's collaborators and configuration, shared by all listeners.

    Args:
        engine: answers questions (sync; listeners run it in a worker thread).
        repo: the store (sync; listeners run it in a worker thread).
        agents: who is a support agent in which workspace, and where its hand-offs are announced.
        options: the serving settings; listeners read `support_channel_ids` (channels whose new top-level messages
            are questions), `max_question_chars` (longer questions are cut for the model and the store) and
            `out_of_scope_label` (what agents pick when a question is not something the bot should answer).
        model_pool: where the engine runs (`None`: the default thread pool, shared with store calls).
        intake: accepts work before the ack and keeps what the database cannot take (see `bot.slack.intake`).
        metrics: the app's Prometheus metrics (`bot.slack.metrics`), served by `bot.slack.ops`.
        status: set by the server (`bot.slack.server`), read by `/readyz`.
        installs: the workspaces' bot tokens when installed through the OAuth flow (`bot.slack.installs`), else
            None (one bot token).
    """

    engine: EngineLike
    repo: Repository
    agents: Agents
    options: ServingOptions
    model_pool: Executor | None
    intake: Intake
    metrics: Metrics
    status: ServingStatus = field(default_factory=ServingStatus)
    installs: ThreadedInstallations | None = None
