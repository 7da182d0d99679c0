"""Who is an agent: fixed ids, user group and channel membership, cached for the TTL."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.agents import FAILURE_TTL_S, AgentDirectory
from tests.bot.slack.harness import BOT_TOKEN
from tests.bot.slack.standin import SlackStandIn


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_membership_is_cached_for_the_ttl(standin: SlackStandIn) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url)
    standin.usergroups["S1"] = ["UG"]
    standin.channel_members["CA"] = ["UC"]
    clock = Clock()
    agents = AgentDirectory(user_ids=["UF"], usergroup_id="S1", channel_id="CA", ttl_s=300, clock=clock)
    assert agents.configured
    assert await agents.is_agent(client, "UF") and standin.calls == []  # fixed ids need no look-up
    assert await agents.is_agent(client, "UG") and await agents.is_agent(client, "UC")
    assert not await agents.is_agent(client, "UX") and not await agents.is_agent(client, None)
    assert len(standin.calls_to("usergroups.users.list")) == 1
    standin.usergroups["S1"] = ["UX"]
    clock.now = 299
    assert not await agents.is_agent(client, "UX")
    clock.now = 301
    assert await agents.is_agent(client, "UX") and not await agents.is_agent(client, "UG")
    assert len(standin.calls_to("usergroups.users.list")) == 2


async def test_failed_lookup_counts_as_not_agent_and_is_retried_soon(standin: SlackStandIn) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url)
    standin.usergroups["S1"] = ["UG"]
    standin.fail("usergroups.users.list", status=200, error="missing_scope")
    clock = Clock()
    agents = AgentDirectory(usergroup_id="S1", clock=clock)
    assert not await agents.is_agent(client, "UG")
    clock.now = FAILURE_TTL_S + 1
    assert await agents.is_agent(client, "UG")


async def test_nobody_is_an_agent_without_configuration(standin: SlackStandIn) -> None:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url)
    agents = AgentDirectory()
    assert not agents.configured and not await agents.is_agent(client, "U1") and standin.calls == []
