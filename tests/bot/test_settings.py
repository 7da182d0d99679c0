"""The one settings object: every field documented, bad values named, .env.example valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.settings import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), flags=re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_env_example_is_valid(tmp_path: Path) -> None:
    assert Path.cwd() == tmp_path  # the autouse isolation: settings read the .env of the working directory
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    settings = load_settings()
    assert settings.slack_mode == "socket"
    assert settings.support_channel_ids == ["C0123456789"]
    assert settings.agent_user_ids == []
    assert settings.database_url is None and settings.db_url.startswith("sqlite:///")
    assert settings.intents_path.name == "intents.yaml"


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.pii_masking is True
    assert Path(settings.base_model_name).is_dir()
    assert settings.db_url.endswith("supportbot.db")


@pytest.mark.parametrize(
    ("name", "value"),
    [("SLACK_MODE", "carrier-pigeon"), ("HTTP_PORT", "99999"), ("WRONG_ANSWER_COST", "high"), ("PII_MASKING", "maybe")],
)
def test_malformed_setting_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name) as info:
        load_settings()
    assert ".env" in str(info.value)


BOT_TOKEN = {"SLACK_BOT_TOKEN": "xoxb-1"}
HTTP = {"SLACK_MODE": "http"}
OAUTH = {"SLACK_CLIENT_ID": "1111.2222", "SLACK_CLIENT_SECRET": "client-s3cret"}


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        pytest.param({}, "SLACK_BOT_TOKEN, SLACK_APP_TOKEN not set", id="socket-nothing"),
        pytest.param(BOT_TOKEN, "SLACK_APP_TOKEN not set", id="socket-no-app-token"),
        pytest.param(BOT_TOKEN | HTTP, "SLACK_SIGNING_SECRET not set", id="http-no-secret"),
        pytest.param(BOT_TOKEN | HTTP | {"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_SIGNING_SECRET", id="http-app-token"),
        pytest.param({"SLACK_SIGNING_SECRET": "s3cret"} | HTTP, "SLACK_BOT_TOKEN not set", id="http-no-bot-token"),
        pytest.param(OAUTH | HTTP, "SLACK_SIGNING_SECRET not set: installing in many", id="oauth-no-secret"),
        pytest.param(
            {"SLACK_CLIENT_ID": "1.2", "SLACK_SIGNING_SECRET": "s"} | HTTP, "SLACK_CLIENT_SECRET", id="oauth-half"
        ),
        pytest.param(OAUTH | {"SLACK_SIGNING_SECRET": "s"}, "needs SLACK_MODE=http", id="oauth-socket"),
    ],
)
def test_require_slack_names_missing_tokens(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=missing):
        load_settings().require_slack()


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        pytest.param(
            {"SLACK_BOT_TOKEN": "xapp-1", "SLACK_APP_TOKEN": "xapp-2"},
            "SLACK_BOT_TOKEN is not a bot token",
            id="app-as-bot",
        ),
        pytest.param(
            BOT_TOKEN | {"SLACK_APP_TOKEN": "xoxb-2"}, "SLACK_APP_TOKEN is not an app-level token", id="bot-as-app"
        ),
        pytest.param(
            {"SLACK_BOT_TOKEN": "xoxp-1", "SLACK_SIGNING_SECRET": "s"} | HTTP, "Bot User OAuth Token", id="user-token"
        ),
    ],
)
def test_require_slack_refuses_a_token_of_the_wrong_kind(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=problem):
        load_settings().require_slack()


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(BOT_TOKEN | {"SLACK_APP_TOKEN": "xapp-1"}, id="socket"),
        pytest.param(BOT_TOKEN | HTTP | {"SLACK_SIGNING_SECRET": "s3cret"}, id="http"),
        pytest.param(OAUTH | HTTP | {"SLACK_SIGNING_SECRET": "s3cret"}, id="oauth-without-a-bot-token"),
    ],
)
def test_require_slack_accepts_the_tokens_of_its_mode(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    load_settings().require_slack()


def test_api_base_url_gets_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_API_BASE_URL", "http://127.0.0.1:9/api")
    assert load_settings().slack_api_base_url == "http://127.0.0.1:9/api/"
