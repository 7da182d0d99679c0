"""App Home: statistics and the model for agents, a short help page for everyone else."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import digest
from bot.slack import blocks, curation_blocks, texts
from bot.slack.deps import Deps
from bot.slack.slack_io import CALL_ERRORS, describe
from storage.models import Proposal
from storage.repository import QueueEntry, Repository, Stats

logger = logging.getLogger(__name__)


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """Start of today and of this week (Monday), UTC."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today, today - timedelta(days=today.weekday())


def load_stats(repo: Repository, now: datetime) -> tuple[Stats, Stats]:
    """Today's and this week's statistics (sync; run in a worker thread)."""
    today, week = period_starts(now)
    return repo.stats(today), repo.stats(week)


def _period(label: str, stats: Stats) -> blocks.PeriodStats:
    return blocks.PeriodStats(label, stats.questions, stats.answered, stats.handed_off, stats.rated, stats.helpful)


@dataclass(frozen=True)
class WorkLists:
    """What waits for the agents: the last digest, the review queue's head and size, the waiting proposals."""

    digest: digest.Digest | None
    queue: list[QueueEntry]
    waiting: int
    proposals: list[Proposal]


def load_work(repo: Repository) -> WorkLists:
    """The agents' work lists (sync; run in a worker thread)."""
    posting = repo.latest_posting(digest.KEY_PREFIX)
    queue = repo.review_queue(limit=curation_blocks.QUEUE_SHOWN)
    return WorkLists(
        digest=digest.Digest.from_dict(posting.content) if posting is not None else None,
        queue=queue,
        waiting=repo.review_queue_size() if queue else 0,
        proposals=repo.proposals("waiting"),
    )


async def agent_view(deps: Deps) -> dict[str, Any]:
    """The agents' App Home, built from the store and the engine (failures shown, not raised): the statistics,
    the nightly digest, the review queue, the waiting proposals and the model."""
    periods: Sequence[blocks.PeriodStats] | None
    unhelpful: Sequence[tuple[str, int]] = ()
    try:
        today, week = await asyncio.to_thread(load_stats, deps.repo, datetime.now(UTC))
        periods = [_period(texts.HOME_TODAY, today), _period(texts.HOME_WEEK, week)]
        unhelpful = week.unhelpful_by_intent
    except Exception:
        logger.exception("App Home statistics failed")
        periods = None
    try:
        info = dict(deps.engine.model_info)
    except Exception:
        logger.exception("engine.model_info failed")
        info = {}
    try:
        intents = list(deps.engine.intents)
    except Exception:
        logger.exception("engine.intents failed")
        intents = []
    view = blocks.agent_home_view(periods, unhelpful_by_intent=unhelpful, model_info=info)
    try:
        work = await asyncio.to_thread(load_work, deps.repo)
    except Exception:
        logger.exception("App Home work lists failed")
        return view
    extra = [
        {"type": "divider"},
        *curation_blocks.digest_blocks(work.digest),
        {"type": "divider"},
        *curation_blocks.review_blocks(
            work.queue, waiting=work.waiting, intents=intents, out_of_scope_label=deps.options.out_of_scope_label
        ),
        {"type": "divider"},
        *curation_blocks.proposals_home_blocks(work.proposals),
    ]
    view["blocks"] = view["blocks"][:2] + extra + view["blocks"][2:]
    return view


async def publish(deps: Deps, client: AsyncWebClient, user: str) -> None:
    """Publish `user`'s Home tab: the agents' view for a home agent (`Agents.can_label`: it shows every
    workspace's figures and queue), the help page for everyone else."""
    if await deps.agents.can_label(client, user):
        view = await agent_view(deps)
    else:
        view = blocks.customer_home_view()
    try:
        await client.views_publish(user_id=user, view=view)
    except CALL_ERRORS as exc:
        logger.warning("views.publish for %s failed: %s", user, describe(exc))


def register(app: AsyncApp, deps: Deps) -> None:
    """Listen to `app_home_opened` and publish the right Home tab."""

    async def on_home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        user = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(user, str) or not user:
            return
        await publish(deps, client, user)

    app.event("app_home_opened")(on_home_opened)
