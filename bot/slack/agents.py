"""Who is a support agent: listed user ids, members of a user group, or members of the agents' channel; and, with
the bot installed in many workspaces, whose agents those are (`Agents`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.slack_io import CALL_ERRORS
from storage.repository import RaterRole

if TYPE_CHECKING:
    from bot.slack.installs import ThreadedInstallations

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


def workspace_of(client: AsyncWebClient) -> str | None:
    """The workspace a listener's client is for (Bolt makes one per request with the event's team id)."""
    team = client.default_params.get("team_id")
    return team if isinstance(team, str) and team else None


class Agents:
    """The agents of each workspace the bot serves, told apart by the workspace of the listener's `client`.

    With one bot token every question comes from one workspace: its agents are `home`, its hand-offs go to
    `home_channel_id`, and they curate. Installed in many workspaces (`installs` set), `home` are the agents of
    `home_team_id`, the workspace running the deployment. In any other workspace the agent is the person who first
    installed the bot there (looked up in `installs`, cached for `ttl_s`): its hand-offs go to that person as a
    DM, and their replies in a thread are logged as an agent's. Only home agents curate (`curates`, `can_label`):
    the review queue and the digest hold every workspace's questions, and their labels, corrections and agent
    ratings train the model and write the knowledge base that every workspace is answered from.
    """

    def __init__(
        self,
        home: AgentDirectory,
        home_channel_id: str | None,
        *,
        installs: ThreadedInstallations | None = None,
        home_team_id: str | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.home = home
        self._home_channel = home_channel_id or None
        self._installs = installs
        self._home_team = home_team_id or None
        self._ttl_s = ttl_s
        self._clock = clock
        self._installers: dict[str, tuple[str | None, float]] = {}

    def curates(self, client: AsyncWebClient) -> bool:
        """Whether `client`'s workspace is the home one, whose agents see and work the review queue, the proposals
        and the digest."""
        return self._installs is None or (self._home_team is not None and workspace_of(client) == self._home_team)

    async def can_label(self, client: AsyncWebClient, user_id: str | None) -> bool:
        """Whether `user_id`'s labels, corrections and ratings count as an agent's (they train the shared model)."""
        return self.curates(client) and await self.home.is_agent(client, user_id)

    async def installer(self, client: AsyncWebClient) -> str | None:
        """Who first installed the bot in `client`'s workspace (None with one bot token, or nobody on record)."""
        team = workspace_of(client)
        if self._installs is None or not team:
            return None
        known = self._installers.get(team)
        if known is not None and self._clock() < known[1]:
            return known[0]
        try:
            user = await self._installs.installer(team)
        except Exception as exc:  # a store failure means "nobody" (the last one known, if any), retried soon
            logger.warning("installer of workspace %s could not be read: %s", team, exc)
            last = known[0] if known is not None else None
            self._installers[team] = (last, self._clock() + FAILURE_TTL_S)
            return last
        self._installers[team] = (user, self._clock() + self._ttl_s)
        return user

    async def is_agent(self, client: AsyncWebClient, user_id: str | None) -> bool:
        """True if `user_id` is an agent of `client`'s workspace."""
        if self.curates(client):
            return await self.home.is_agent(client, user_id)
        return bool(user_id) and user_id == await self.installer(client)

    async def rater_role(self, client: AsyncWebClient, user_id: str) -> RaterRole:
        """`agent` for the agents whose ratings train the model (`can_label`), `customer` for everyone else."""
        return "agent" if await self.can_label(client, user_id) else "customer"

    async def channel(self, client: AsyncWebClient) -> str | None:
        """Where `client`'s workspace's hand-offs are announced (None: only stored)."""
        return self._home_channel if self.curates(client) else await self.installer(client)


def _strings(values: object) -> list[str]:
    return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []
