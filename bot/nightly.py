"""What the nightly job does for the agents once the model question is settled: the review queue, new-intent
proposals and the digest (`for_agents`, called by `bot.retrain.retrain` after every nightly run, whatever its
outcome: promoted, rejected, nothing to do or failed).

Proposals are posted to the agents' channel once, when first made (a proposal found again updates its
members, silently). The digest is posted once per UTC day: a re-run the same day updates the posted message in
place (`chat.update`), and the App Home always shows the latest. Without SLACK_BOT_TOKEN / AGENT_CHANNEL_ID (or
with NIGHTLY_DIGEST=false) nothing is posted, and everything is still stored for the App Home and
`supportbot review`. Nothing here can fail the job: each step logs what went wrong and the next one runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot import digest
from bot.curation import CurationResult, curate
from bot.notify import AgentChannel
from bot.settings import Settings
from bot.slack import curation_blocks
from bot.versions import MODEL_DIR
from storage.repository import Repository
from training.locations import located
from training.model import IntentModel
from training.pipeline import one_line

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentsReport:
    """What `for_agents` did (None where the step failed or could not run)."""

    curation: CurationResult | None
    digest: digest.Digest | None
    digest_ts: str | None


def for_agents(
    settings: Settings,
    repo: Repository,
    *,
    outcome: str,
    now: datetime | None = None,
    echo: Callable[[str], None] | None = None,
) -> AgentsReport:
    """Rank the review queue, propose new intents, post the digest (see the module docstring).

    Args:
        outcome: one line on what tonight's run did (the digest's "Model" line).
    """
    say = echo or log.info
    now = now or datetime.now(UTC)
    channel = AgentChannel(settings) if settings.nightly_digest else None
    curated = _curate(settings, repo, now, say)
    if curated is not None and channel is not None:
        try:
            _post_proposals(repo, channel, curated)
        except Exception as exc:  # never fail the job
            log.warning("new-intent proposals not posted: %s", one_line(exc))
    try:
        content = digest.build(repo, now=now, model=outcome)
        ts = post_digest(repo, channel, content, now=now)
    except Exception as exc:
        log.warning("the nightly digest failed: %s", one_line(exc))
        say(f"nightly digest not made: {one_line(exc)}")
        return AgentsReport(curated, None, None)
    posted = ts is not None and channel is not None and channel.ready
    say("nightly digest " + (f"posted to {channel.channel}" if posted and channel else "stored (App Home)"))
    return AgentsReport(curated, content, ts)


def _post_proposals(repo: Repository, channel: AgentChannel, curated: CurationResult) -> None:
    for proposal in curated.new_proposals:
        blocks = curation_blocks.proposal_blocks(proposal)
        ts = channel.post(curation_blocks.proposal_fallback(proposal), blocks)
        if ts and proposal.id is not None:
            repo.set_proposal_message(proposal.id, channel_id=channel.channel, slack_ts=ts)


def refresh_lists(settings: Settings, repo: Repository, *, echo: Callable[[str], None]) -> CurationResult | None:
    """Rank the review queue and look for new intents now (`supportbot review --refresh`), under the job's lock;
    nothing is posted."""
    from bot.retrain import locked

    with locked(settings, wait=True, echo=echo):
        return _curate(settings, repo, datetime.now(UTC), echo)


def _curate(settings: Settings, repo: Repository, now: datetime, say: Callable[[str], None]) -> CurationResult | None:
    try:
        production = repo.production_model()
        if production is None:
            say("review queue and intent discovery skipped: no model in production yet")
            return None
        model = IntentModel.load(
            located(production, settings.models_dir) / MODEL_DIR, device=None, threads=settings.torch_threads or None
        )
        result = curate(settings, repo, model, now=now)
    except Exception as exc:
        log.warning("the review queue and intent discovery failed: %s", one_line(exc))
        say(f"review queue and intent discovery skipped: {one_line(exc)}")
        return None
    say(
        f"review queue: {result.queued} of {result.scored} unlabelled questions; intent discovery: "
        f"{len(result.new_proposals)} new proposals, {result.updated} updated"
    )
    return result


def post_digest(repo: Repository, channel: AgentChannel | None, content: digest.Digest, *, now: datetime) -> str | None:
    """Post the digest once per UTC day (updating the day's message if there is one) and store it; its ts."""
    key = digest.key(now)
    previous = repo.posting(key)
    ts = previous.slack_ts if previous is not None else None
    if channel is not None and channel.ready:
        text, blocks = digest.text(content), curation_blocks.digest_blocks(content)
        if not ts or not channel.update(ts, text, blocks):
            ts = channel.post(text, blocks) or None
    where = channel.channel if channel is not None and ts else (previous.channel_id if previous else None)
    repo.record_posting(key, channel_id=where, slack_ts=ts, content=content.to_dict())
    return ts
