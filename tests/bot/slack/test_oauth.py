"""Many workspaces through the real Bolt stack: Slack's OAuth install flow (the stand-in plays `oauth.v2.access`),
each workspace answered with its own token, its data and agents apart from the other's, and an uninstall."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bot import installations
from bot.slack import installs
from bot.slack.app import deps_of
from bot.slack.recovery import Recovery
from bot.slack.work import work_of
from storage.repository import Repository
from tests.bot.slack import payloads
from tests.bot.slack.fakes import FakeEngine
from tests.bot.slack.harness import AGENT, AGENT_CHANNEL, CLIENT_ID, BotUnderTest, quiesce, start_oauth_bot
from tests.bot.slack.standin import SlackStandIn

ALPHA, BRAVO = "TALPHA", "TBRAVO"
WORKSPACES = {
    "xoxb-alpha-token": {"team_id": ALPHA, "bot_user_id": "UBOTALPHA", "bot_id": "BALPHA", "installer": "UADMINA"},
    "xoxb-bravo-token": {"team_id": BRAVO, "bot_user_id": "UBOTBRAVO", "bot_id": "BBRAVO", "installer": "UADMINB"},
}
TOKEN = {ws["team_id"]: token for token, ws in WORKSPACES.items()}


@pytest.fixture
async def oauth_bot(standin: SlackStandIn, store: Repository, engine: FakeEngine) -> AsyncIterator[BotUnderTest]:
    standin.workspaces = dict(WORKSPACES)
    bot = await start_oauth_bot(standin=standin, repo=store, engine=engine, home_team_id=ALPHA)
    yield bot
    await bot.stop()


def site(bot: BotUnderTest) -> str:
    return bot.url.removesuffix("/slack/events")


async def install(bot: BotUnderTest, team: str) -> aiohttp.ClientResponse:
    """What an admin of `team` does: open the install link, approve at Slack, come back to the redirect (with the
    state cookie, which is `Secure`: sent by hand over the loopback's plain HTTP)."""
    async with aiohttp.ClientSession() as browser:
        async with browser.get(f"{site(bot)}/slack/install") as page:
            assert page.status == 200, await page.text()
            link = re.search(r'href="([^"]+oauth/v2/authorize[^"]+)"', await page.text())
            cookie = page.headers["Set-Cookie"].split(";", 1)[0]
        assert link is not None
        query = parse_qs(urlparse(link.group(1).replace("&amp;", "&")).query)
        assert query["client_id"] == [CLIENT_ID]
        assert set(query["scope"][0].split(",")) == set(installs.manifest_scopes())
        async with browser.get(
            f"{site(bot)}/slack/oauth_redirect",
            params={"code": f"code-{team}", "state": query["state"][0]},
            headers={"Cookie": cookie},
        ) as back:
            await back.read()
            return back


def dm(text_: str, *, user: str, team: str, channel: str) -> dict[str, Any]:
    return payloads.event_callback(payloads.message(text_, user=user, channel=channel, team=team), team_id=team)


def posts(standin: SlackStandIn, channel: str) -> list[Any]:
    return [c for c in standin.calls_to("chat.postMessage") if c.params.get("channel") == channel]


def token_of(call: Any) -> str:
    return str(call.headers.get("Authorization", "")).removeprefix("Bearer ")


async def test_two_workspaces_install_answer_with_their_own_tokens_and_never_see_each_other(
    oauth_bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    for team in (ALPHA, BRAVO):
        assert (await install(oauth_bot, team)).status == 200
    saved = installations.installation_store(CLIENT_ID, store.engine)
    for team in (ALPHA, BRAVO):
        found = saved.find_bot(enterprise_id=None, team_id=team)
        assert found is not None and found.bot_token == TOKEN[team]

    # the same customer id, the same words, in both workspaces: two conversations, each answered with its token
    for team, channel in ((ALPHA, "DALPHA"), (BRAVO, "DBRAVO")):
        reply = await oauth_bot.send(dm("how do I reset my password", user="UCUST", team=team, channel=channel))
        assert reply.status == 200
    await quiesce()
    for team, channel in ((ALPHA, "DALPHA"), (BRAVO, "DBRAVO")):
        [answer] = posts(standin, channel)
        assert token_of(answer) == TOKEN[team]
    with store.engine.connect() as db:
        rows = db.execute(text("SELECT team_id, channel_id FROM conversations ORDER BY team_id")).all()
    assert [tuple(r) for r in rows] == [(ALPHA, "DALPHA"), (BRAVO, "DBRAVO")]

    # hand-offs: the home workspace's go to its agents' channel, the other's to its installer, each with its token
    for team, channel in ((ALPHA, "DALPHA2"), (BRAVO, "DBRAVO2")):
        await oauth_bot.send(dm("my parcel never came", user="UCUST", team=team, channel=channel))
    await quiesce()
    [home_notice] = posts(standin, AGENT_CHANNEL)
    [bravo_notice] = posts(standin, "UADMINB")
    assert (token_of(home_notice), token_of(bravo_notice)) == (TOKEN[ALPHA], TOKEN[BRAVO])
    assert "DALPHA2" not in str(bravo_notice.params) and "DBRAVO2" not in str(home_notice.params)

    # agents: the home workspace's agents curate (every workspace's queue); the other workspace's installer is an
    # agent there, but sees no cross-workspace figures or queue
    for user, team in ((AGENT, ALPHA), ("UADMINB", BRAVO)):
        await oauth_bot.send(payloads.event_callback(payloads.home_opened(user), team_id=team))
    await quiesce()
    views = {c.params["user_id"]: c for c in standin.calls_to("views.publish")}
    assert token_of(views[AGENT]) == TOKEN[ALPHA] and token_of(views["UADMINB"]) == TOKEN[BRAVO]
    assert "review" in str(views[AGENT].params["view"]).lower()
    assert "review" not in str(views["UADMINB"].params["view"]).lower()
    assert "DALPHA" not in str(views["UADMINB"].params["view"])

    # the other workspace's installer is refused the correction modal: its labels would train the shared model
    [b_answer] = posts(standin, "DBRAVO")
    shortcut = payloads.message_shortcut(
        "correct_answer", user="UADMINB", channel="DBRAVO", message_ts=b_answer.response["ts"],
        thread_ts=str(b_answer.params["thread_ts"]),
    )  # fmt: skip
    shortcut["team"]["id"] = shortcut["user"]["team_id"] = BRAVO
    assert (await oauth_bot.send(shortcut)).status == 200
    await quiesce()
    assert not [c for c in standin.calls_to("views.open") if token_of(c) == TOKEN[BRAVO]]
    for team in (ALPHA, BRAVO):  # once when installed, once for its first event; not for each of its 3
        assert len([c for c in standin.calls_to("auth.test") if token_of(c) == TOKEN[team]]) <= 2


async def test_an_uninstall_deletes_that_workspace_tokens_and_only_that(
    oauth_bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    for team in (ALPHA, BRAVO):
        assert (await install(oauth_bot, team)).status == 200
    reply = await oauth_bot.send(payloads.event_callback({"type": "app_uninstalled", "event_ts": "1"}, team_id=BRAVO))
    assert reply.status == 200
    await quiesce()
    saved = installations.installation_store(CLIENT_ID, store.engine)
    assert saved.find_bot(enterprise_id=None, team_id=BRAVO) is None
    assert saved.find_installation(enterprise_id=None, team_id=BRAVO) is None
    assert saved.find_bot(enterprise_id=None, team_id=ALPHA) is not None

    await oauth_bot.send(dm("how do I reset my password", user="UCUST", team=BRAVO, channel="DBRAVO"))
    await oauth_bot.send(dm("how do I reset my password", user="UCUST", team=ALPHA, channel="DALPHA"))
    await quiesce()
    assert posts(standin, "DBRAVO") == []
    [answer] = posts(standin, "DALPHA")
    assert token_of(answer) == TOKEN[ALPHA]
    assert all(token_of(c) != TOKEN[BRAVO] for c in standin.calls if c.method != "auth.test")


async def test_revoked_tokens_are_not_used_again(oauth_bot: BotUnderTest, standin: SlackStandIn) -> None:
    for team in (ALPHA, BRAVO):
        assert (await install(oauth_bot, team)).status == 200
    await oauth_bot.send(dm("how do I reset my password", user="UCUST", team=BRAVO, channel="DBRAVO"))
    await quiesce()
    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOTBRAVO"]}, "event_ts": "2"}
    assert (await oauth_bot.send(payloads.event_callback(revoked, team_id=BRAVO))).status == 200
    await quiesce()
    await oauth_bot.send(dm("how do I reset my password again", user="UCUST", team=BRAVO, channel="DBRAVO2"))
    await quiesce()
    assert posts(standin, "DBRAVO2") == []  # refused, though its auth.test result was cached


async def test_a_workspace_in_an_enterprise_org_is_found_by_its_team(store: Repository) -> None:
    saved = installations.installation_store(CLIENT_ID, store.engine)
    saved.save(Installation(app_id="A1", enterprise_id="E1", team_id="TGRID", user_id="UFIRST", bot_token="xoxb-g",
                            bot_id="B1"))  # fmt: skip
    saved.save(
        Installation(
            app_id="A1", enterprise_id="E1", team_id="TGRID", user_id="ULATER", bot_token="xoxb-h", bot_id="B1"
        )
    )  # fmt: skip  (a member re-authorised the app)
    threaded = installs.ThreadedInstallations(saved)
    base = AsyncWebClient(token=None, base_url="http://127.0.0.1:9/api/")
    client = await installs.client_for(threaded, base, "TGRID")
    assert client is not None and client.token == "xoxb-h"
    assert await threaded.installer("TGRID") == "UFIRST"  # the first installer stays the workspace's agent


async def test_the_last_known_bot_serves_while_the_database_is_away(store: Repository) -> None:
    saved = installations.installation_store(CLIENT_ID, store.engine)
    saved.save(Installation(app_id="A1", team_id=ALPHA, user_id="UADMINA", bot_token="xoxb-a", bot_id="B1"))
    threaded = installs.ThreadedInstallations(saved)
    found = await threaded.async_find_bot(enterprise_id=None, team_id=ALPHA)
    assert found is not None and found.bot_token == "xoxb-a"

    def away(**_: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    saved.find_bot = away  # type: ignore[method-assign]
    kept = await threaded.async_find_bot(enterprise_id=None, team_id=ALPHA)
    assert kept is not None and kept.bot_token == "xoxb-a"
    with pytest.raises(OperationalError):  # a workspace never seen is not made up
        await threaded.async_find_bot(enterprise_id=None, team_id=BRAVO)
    await threaded.async_delete_all(enterprise_id=None, team_id=ALPHA)
    with pytest.raises(OperationalError):  # an uninstalled one is forgotten
        await threaded.async_find_bot(enterprise_id=None, team_id=ALPHA)


async def test_the_redirect_path_follows_the_redirect_url(standin: SlackStandIn, store: Repository) -> None:
    bot = await start_oauth_bot(standin=standin, repo=store, engine=FakeEngine(), home_team_id=ALPHA,
                                redirect_uri="https://bot.example.com/slack/back")  # fmt: skip
    try:
        assert bot.app.oauth_flow is not None and bot.app.oauth_flow.redirect_uri_path == "/slack/back"
    finally:
        await bot.stop()


async def test_an_install_with_a_forged_state_is_refused(oauth_bot: BotUnderTest, store: Repository) -> None:
    async with (
        aiohttp.ClientSession() as browser,
        browser.get(
            f"{site(oauth_bot)}/slack/oauth_redirect", params={"code": f"code-{ALPHA}", "state": "forged"}
        ) as back,
    ):
        assert back.status >= 400
    saved = installations.installation_store(CLIENT_ID, store.engine)
    assert saved.find_bot(enterprise_id=None, team_id=ALPHA) is None


async def test_work_a_dead_bot_left_is_carried_out_with_its_workspace_token(
    oauth_bot: BotUnderTest, standin: SlackStandIn, store: Repository
) -> None:
    for team in (ALPHA, BRAVO):
        assert (await install(oauth_bot, team)).status == 200
    for team, channel in ((ALPHA, "DALPHA"), (BRAVO, "DBRAVO"), ("TNEVER", "DNEVER")):  # the last never installed
        work = work_of(dm("how do I reset my password", user="UCUST", team=team, channel=channel), bot_user_id=None,
                       support_channel_ids=frozenset())  # fmt: skip
        assert work is not None
        store.accept(work.key, work.kind, work.payload, worker="dead", lease_s=0, text=work.text)
    deps = deps_of(oauth_bot.app)
    assert deps is not None
    assert await Recovery(deps, oauth_bot.app.client).sweep() == 3
    for team, channel in ((ALPHA, "DALPHA"), (BRAVO, "DBRAVO")):
        [answer] = posts(standin, channel)
        assert token_of(answer) == TOKEN[team]
    assert posts(standin, "DNEVER") == []
    assert store.inbox_size() == 0  # the uninstalled workspace's work is dropped, not retried forever
