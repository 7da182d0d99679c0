"""`ServingOptions`: how the bot serves, as plain values built once from the settings.

The one object the serving side receives (the engine, the model holder, the Slack app and its listeners): no
module below `bot.settings` declares a default of its own. `ServingOptions.from_settings(settings)` is the
production path; `ServingOptions.defaults(**changes)` is the settings' defaults (the environment not read),
for benchmarks and tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.settings import Settings


@dataclass(frozen=True)
class ServingOptions:
    """Every setting the serving side uses (see `.env.example` for each).

    Args:
        intents_path: The intents file (curated answers and their documents; re-read on a model switch).
        out_of_scope_label: The label the bot never answers from, and the one agents pick for such questions.
        retrieval_min_score: Cosine score a knowledge-base passage needs to be given as the answer.
        mask_pii: Mask e-mails, phones, cards and IBANs before the model (and the store) sees a question.
        max_question_chars: Longer questions are cut to this many characters.
        torch_threads: Torch threads per model (None: torch's own choice).
        quantize: Load models with int8 dynamic quantisation.
        reload_interval_s: How often the registry is polled for a newly promoted version.
        bot_token: The Slack `xoxb-` bot token (None outside Slack).
        signing_secret: Verifies Slack's HTTP requests (not needed in Socket Mode).
        api_base_url: The Slack Web API base URL.
        client_id: The app's client id: with `client_secret`, installed in many workspaces through Slack's OAuth
            flow (`bot.slack.installs`) instead of one `bot_token`.
        client_secret: The app's client secret (the OAuth flow).
        authorize_url: Slack's authorize page the install link points to.
        redirect_uri: The redirect URL registered with Slack (None: the app's only one).
        home_team_id: With the OAuth flow, the workspace whose agents are the `agent_*` settings and curate for
            all; every other workspace's hand-offs go to whoever first installed the bot there.
        agent_channel_id: The agents' channel: hand-offs are posted there, and its members are agents.
        agent_usergroup_id: A user group whose members are agents.
        agent_user_ids: Users who are always agents.
        support_channel_ids: Channels where every new top-level message is a question.
        max_retries: Retries of a Slack Web API call on 429 (after Retry-After) and on 5xx.
        spool_path: The local spool (what the database could not take while it was away).
        recovery_interval_s: How often the inbox is swept for work nobody finished (and the spool flushed).
        recovery_lease_s: How long a worker's claim on a unit of work holds before another may take it over.
        recovery_max_age_s: A question recovered later than this gets an apology and a hand-off, not an answer.
    """

    intents_path: Path
    models_dir: Path
    out_of_scope_label: str
    retrieval_min_score: float
    mask_pii: bool
    max_question_chars: int
    torch_threads: int | None
    quantize: bool
    reload_interval_s: float
    bot_token: str | None = field(repr=False)
    signing_secret: str | None = field(repr=False)
    api_base_url: str
    client_id: str | None
    client_secret: str | None = field(repr=False)
    authorize_url: str
    redirect_uri: str | None
    home_team_id: str | None
    agent_channel_id: str | None
    agent_usergroup_id: str | None
    agent_user_ids: tuple[str, ...]
    support_channel_ids: frozenset[str]
    max_retries: int
    spool_path: Path
    recovery_interval_s: float
    recovery_lease_s: float
    recovery_max_age_s: float

    @property
    def oauth(self) -> bool:
        """Installed in many workspaces through Slack's OAuth flow (a client id and secret)."""
        return bool(self.client_id and self.client_secret)

    def __post_init__(self) -> None:
        # any iterable of ids may be given (e.g. through `defaults`); stored immutable
        object.__setattr__(self, "agent_user_ids", tuple(self.agent_user_ids))
        object.__setattr__(self, "support_channel_ids", frozenset(self.support_channel_ids))

    @classmethod
    def from_settings(cls, settings: Settings) -> ServingOptions:
        """The options `settings` asks for."""

        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            intents_path=settings.intents_path,
            models_dir=settings.models_dir,
            out_of_scope_label=settings.out_of_scope_label,
            retrieval_min_score=settings.retrieval_min_score,
            mask_pii=settings.pii_masking,
            max_question_chars=settings.max_question_chars,
            torch_threads=settings.torch_threads or None,
            quantize=settings.quantize,
            reload_interval_s=settings.reload_interval_s,
            bot_token=secret(settings.slack_bot_token),
            signing_secret=secret(settings.slack_signing_secret),
            api_base_url=settings.slack_api_base_url,
            client_id=settings.slack_client_id,
            client_secret=secret(settings.slack_client_secret),
            authorize_url=settings.slack_authorize_url,
            redirect_uri=settings.slack_redirect_uri,
            home_team_id=settings.slack_home_team_id,
            agent_channel_id=settings.agent_channel_id or None,
            agent_usergroup_id=settings.agent_usergroup_id or None,
            agent_user_ids=tuple(settings.agent_user_ids),
            support_channel_ids=frozenset(settings.support_channel_ids),
            max_retries=settings.slack_max_retries,
            spool_path=settings.spool_path,
            recovery_interval_s=settings.recovery_interval_s,
            recovery_lease_s=settings.recovery_lease_s,
            recovery_max_age_s=settings.recovery_max_age_s,
        )

    @classmethod
    def defaults(cls, **changes: Any) -> ServingOptions:
        """The options of the settings' defaults (neither the environment nor `.env` is read), with `changes`."""
        from bot.settings import Settings

        return dataclasses.replace(cls.from_settings(Settings.model_construct()), **changes)
