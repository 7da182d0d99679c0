"""Storing ratings: one verdict per rater, answer and source (buttons and reactions each keep their own)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.deps import Deps
from storage.repository import RaterRole, Repository


async def rater_role(deps: Deps, client: AsyncWebClient, user_id: str) -> RaterRole:
    """`agent` for support agents, `customer` for everyone else."""
    return "agent" if await deps.agents.is_agent(client, user_id) else "customer"


def set_rating(
    repo: Repository, answer_id: int, *, rater_id: str, role: RaterRole, helpful: bool, source: str
) -> bool | None:
    """Record `rater_id`'s verdict, replacing an opposite one from the same source.

    Idempotent: a repeated verdict (a retried event, a double click) is stored once. Returns True if a row
    was written, False if it was already there, None if the answer does not exist.
    """
    if repo.get_answer(answer_id) is None:
        return None
    repo.remove_rating(answer_id, rater_id=rater_id, source=source, helpful=not helpful)
    existing = repo.ratings(answer_id)
    if any(r.rater_id == rater_id and r.source == source and r.helpful is helpful for r in existing):
        return False
    repo.add_rating(answer_id, rater_id=rater_id, rater_role=role, helpful=helpful, source=source)
    return True


def unset_rating(repo: Repository, answer_id: int, *, rater_id: str, helpful: bool, source: str) -> int:
    """Withdraw `rater_id`'s verdict (a removed reaction); returns how many rows went."""
    return repo.remove_rating(answer_id, rater_id=rater_id, source=source, helpful=helpful)
