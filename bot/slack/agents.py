"""Who is a support agent: listed user ids, members of a user group, or members of the agents' channel."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.slack_io import CALL_ERRORS
from storage.repository import RaterRole

logger = logging.getLogger(__name__)

DEFAULT_TTL_S = 300.0
FAILURE_TTL_S = 30.0  # a failed look-up is retried soon, not held for the full TTL


class AgentDirectory:
    """Answers "is this user an agent?", caching group and channel membership for `ttl_s` seconds.

    Args:
        user_ids: users who are always agents.
        usergroup_id: a user group whose members are agents (`usergroups.users.list`, needs `usergroups:read`).
        channel_id: a channel whose members are agents (`conversations.members`, needs `channels:read`).
        ttl_s: how long a membership list is trusted.
        clock: monotonic clock (tests).
    """

    def __init__(
        self,
        *,
        user_ids: Iterable[str] = (),
        usergroup_id: str | None = None,
        channel_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fixed = frozenset(user_ids)
        self._usergroup_id = usergroup_id or None
        self._channel_id = channel_id or None
        self._ttl_s = ttl_s
        self._clock = clock
        self._members: frozenset[str] = frozenset()
        self._expires = 0.0
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        """True when at least one way of recognising agents is set up."""
        return bool(self._fixed or self._usergroup_id or self._channel_id)

    async def is_agent(self, client: AsyncWebClient, user_id: str | None) -> bool:
        """True if `user_id` is an agent. Slack look-ups failing count as "not an agent" (logged)."""
        if not user_id:
            return False
        if user_id in self._fixed:
            return True
        if not (self._usergroup_id or self._channel_id):
            return False
        return user_id in await self._current_members(client)

    async def rater_role(self, client: AsyncWebClient, user_id: str) -> RaterRole:
        """`agent` for support agents, `customer` for everyone else (how a rating is stored)."""
        return "agent" if await self.is_agent(client, user_id) else "customer"

    async def _current_members(self, client: AsyncWebClient) -> frozenset[str]:
        if self._clock() < self._expires:
            return self._members
        async with self._lock:
            if self._clock() < self._expires:  # another task refreshed it while we waited
                return self._members
            members, complete = await self._fetch(client)
            self._members = members
            self._expires = self._clock() + (self._ttl_s if complete else FAILURE_TTL_S)
            return members

    async def _fetch(self, client: AsyncWebClient) -> tuple[frozenset[str], bool]:
        members: set[str] = set()
        complete = True
        if self._usergroup_id:
            try:
                response = await client.usergroups_users_list(usergroup=self._usergroup_id)
                members.update(_strings(response.get("users")))
            except CALL_ERRORS as exc:
                complete = False
                logger.warning("usergroups.users.list %s failed: %s", self._usergroup_id, exc)
        if self._channel_id:
            try:
                members.update(await self._channel_members(client, self._channel_id))
            except CALL_ERRORS as exc:
                complete = False
                logger.warning("conversations.members %s failed: %s", self._channel_id, exc)
        return frozenset(members), complete

    @staticmethod
    async def _channel_members(client: AsyncWebClient, channel_id: str) -> set[str]:
        members: set[str] = set()
        cursor: str | None = None
        for _ in range(50):  # 50 pages x 1000 members is far more than any agents' channel
            response = await client.conversations_members(channel=channel_id, limit=1000, cursor=cursor)
            members.update(_strings(response.get("members")))
            metadata = response.get("response_metadata")
            cursor = metadata.get("next_cursor") if isinstance(metadata, dict) else None
            if not cursor:
                break
        return members


def _strings(values: object) -> list[str]:
    return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []
