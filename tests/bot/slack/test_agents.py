"""Who is an agent: fixed ids, user group and channel membership, cached for the TTL; per workspace when installed
in many."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.agents import FAILURE_TTL_S, AgentDirectory, Agents
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


class Installs:
    """Who first installed the bot in each workspace (counting look-ups), as `ThreadedInstallations.installer`."""

    def __init__(self, installers: dict[str, str]) -> None:
        self.installers = installers
        self.lookups = 0

    async def installer(self, team_id: str) -> str | None:
        self.lookups += 1
        return self.installers.get(team_id)


def _client(team: str | None) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/", team_id=team)


async def test_each_workspace_has_its_own_agents_and_only_home_curates() -> None:
    installs = Installs({"TB": "UADMINB"})
    clock = Clock()
    home = AgentDirectory(user_ids=["UHOME"])
    agents = Agents(home, "CAGENTS", installs=installs, home_team_id="TA", ttl_s=60, clock=clock)  # type: ignore[arg-type]
    a, b, c = _client("TA"), _client("TB"), _client("TC")
    assert await agents.is_agent(a, "UHOME") and not await agents.is_agent(a, "UADMINB")
    assert await agents.is_agent(b, "UADMINB") and not await agents.is_agent(b, "UHOME")
    assert not await agents.is_agent(c, "UADMINB")  # a workspace with no installation on record has no agent
    assert (await agents.channel(a), await agents.channel(b), await agents.channel(c)) == ("CAGENTS", "UADMINB", None)
    assert (agents.curates(a), agents.curates(b)) == (True, False)
    # the installer's labels and ratings would train the model every workspace is answered from: not an agent's
    assert not await agents.can_label(b, "UADMINB") and await agents.can_label(a, "UHOME")
    assert (await agents.rater_role(b, "UADMINB"), await agents.rater_role(a, "UHOME")) == ("customer", "agent")
    seen = installs.lookups
    await agents.is_agent(b, "UADMINB")
    assert installs.lookups == seen  # cached
    installs.installers["TB"] = "UNEWADMIN"  # reinstalled by someone else
    clock.now = 61
    assert await agents.is_agent(b, "UNEWADMIN")


async def test_with_one_bot_token_every_workspace_is_home() -> None:
    agents = Agents(AgentDirectory(user_ids=["UHOME"]), "CAGENTS")
    client = _client("TANY")
    assert await agents.is_agent(client, "UHOME") and agents.curates(client)
    assert await agents.channel(client) == "CAGENTS"
