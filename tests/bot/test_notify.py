"""The nightly job's token for the agents' channel: SLACK_BOT_TOKEN, or the home workspace's stored install."""

from __future__ import annotations

from slack_sdk.oauth.installation_store import Installation

from bot import installations
from bot.notify import AgentChannel, bot_token
from bot.settings import load_settings
from storage.repository import Repository


def test_installed_in_many_workspaces_the_job_posts_with_the_home_workspace_token(sqlite_url: str) -> None:
    settings = load_settings(
        database_url=sqlite_url,
        slack_client_id="1111.2222",
        slack_client_secret="s3cret",
        slack_home_team_id="THOME",
        agent_channel_id="CAGENTS",
    )
    assert bot_token(settings) == ""  # nothing installed yet: nothing is posted
    assert not AgentChannel(settings).ready
    with Repository(sqlite_url) as repo:
        store = installations.installation_store("1111.2222", repo.engine)
        for team in ("THOME", "TOTHER"):
            token = f"xoxb-{team.lower()}"
            store.save(Installation(app_id="A1", user_id="UADMIN", team_id=team, bot_token=token, bot_id="B1"))
    assert bot_token(settings) == "xoxb-thome"
    assert AgentChannel(settings).ready
    assert bot_token(load_settings(database_url=sqlite_url, slack_bot_token="xoxb-given")) == "xoxb-given"
