"""SQLModel tables for everything supportbot logs.

Times are stored as timezone-aware UTC (`UTCDateTime`: SQLite keeps naive UTC text, PostgreSQL
`timestamptz`; both read back as aware UTC datetimes). Indexes cover the nightly job's queries (time
windows, foreign keys). Constraint names follow `NAMING_CONVENTION` so that migrations can address them.
The schema is created by the Alembic migrations in `storage/migrations`, never by `create_all`; a test
keeps the two identical.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (naive values are taken to be UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        # SQLite has no time zones: store naive UTC so that text comparisons order correctly.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(*, index: bool = True, nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(UTCDateTime(), index=index, nullable=nullable),
    )


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Any:
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey(target, ondelete=ondelete), index=True, nullable=nullable),
    )


class Conversation(SQLModel, table=True):
    """One Slack thread (or one terminal chat session)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "thread_ts", name="uq_conversation_thread"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=64)
    thread_ts: str = Field(max_length=32)
    started_by: str | None = Field(default=None, max_length=32, index=True)
    source: str = Field(default="slack", max_length=16)
    created_at: datetime = _time()
    last_activity_at: datetime = _time()


class Message(SQLModel, table=True):
    """A message in a conversation: the customer's (`user`), the bot's, or a human agent's."""

    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = _fk("conversations.id")
    role: str = Field(max_length=8)
    user_id: str | None = Field(default=None, max_length=32, index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    slack_ts: str | None = Field(default=None, max_length=32)
    event_id: str | None = Field(default=None, max_length=64, unique=True)
    created_at: datetime = _time()


class Answer(SQLModel, table=True):
    """The engine's prediction and the answer given for one question."""

    __tablename__ = "answers"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = _fk("conversations.id")
    question_id: int = _fk("messages.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=16)  # intent | retrieval | clarify | handoff
    intent: str | None = Field(default=None, max_length=128, index=True)
    confidence: float | None = None
    doc_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    doc_scores: list[float] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_version: str | None = Field(default=None, max_length=64)
    latency_ms: float | None = None
    status: str = Field(default="pending", max_length=16)  # pending | posted | failed
    channel_id: str | None = Field(default=None, max_length=64)
    slack_ts: str | None = Field(default=None, max_length=32, index=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _time()


VERDICT_SOURCES: tuple[str, ...] = ("button", "reaction", "cli")
"""Rating sources that hold one verdict per rater and answer (a Slack button, a reaction, the terminal)."""
VERDICT_SOURCES_SQL = "source IN ('button', 'reaction', 'cli')"
"""The one-verdict index's condition, as SQL (the same text in the model, the migration and the upsert)."""


class Rating(SQLModel, table=True):
    """A customer's or agent's verdict on an answer, optionally with a correction.

    One verdict per (answer, rater, source) for the verdict sources, enforced by the database (a partial unique
    index), so two identical reactions arriving at once store one row.
    """

    __tablename__ = "ratings"
    __table_args__ = (
        Index(
            "uq_ratings_one_verdict",
            "answer_id",
            "rater_id",
            "source",
            unique=True,
            sqlite_where=text(VERDICT_SOURCES_SQL),
            postgresql_where=text(VERDICT_SOURCES_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    answer_id: int = _fk("answers.id")
    rater_id: str = Field(max_length=32, index=True)
    rater_role: str = Field(max_length=16)  # agent | customer
    helpful: bool | None = None
    corrected_intent: str | None = Field(default=None, max_length=128)
    corrected_answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    source: str = Field(default="button", max_length=16)  # button|reaction|modal|cli|clarify|review|discovery
    created_at: datetime = _time()


class Handoff(SQLModel, table=True):
    """A question passed to a human agent."""

    __tablename__ = "handoffs"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = _fk("conversations.id")
    answer_id: int | None = _fk("answers.id", nullable=True, ondelete="SET NULL")
    reason: str = Field(max_length=32)  # abstained | customer_request | engine_error | not_helpful | delayed
    agent_channel_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = _time()


class EvalExample(SQLModel, table=True):
    """A labelled example set aside for the frozen evaluation set; never trained on."""

    __tablename__ = "eval_examples"

    id: int | None = Field(default=None, primary_key=True)
    text_key: str = Field(max_length=64, unique=True)  # sha256 of the normalised text
    text: str = Field(sa_column=Column(Text, nullable=False))
    label: str = Field(max_length=128)
    origin: str = Field(max_length=32)  # seed | log
    created_at: datetime = _time()


class ModelVersion(SQLModel, table=True):
    """A trained model (and the index built with it) in the registry."""

    __tablename__ = "model_versions"
    __table_args__ = (
        # At most one production version, enforced by the database itself.
        Index(
            "uq_model_versions_one_production",
            "status",
            unique=True,
            sqlite_where=text("status = 'production'"),
            postgresql_where=text("status = 'production'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=64, unique=True)
    status: str = Field(default="candidate", max_length=16, index=True)  # candidate|production|retired|rejected
    path: str = Field(sa_column=Column(Text, nullable=False))  # relative to the models folder (or absolute)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dataset_hash: str = Field(max_length=64)
    created_at: datetime = _time()
    promoted_at: datetime | None = _time(index=False, nullable=True)


class TrainingRun(SQLModel, table=True):
    """One run of the nightly job."""

    __tablename__ = "training_runs"

    id: int | None = Field(default=None, primary_key=True)
    trigger: str = Field(max_length=32)
    status: str = Field(default="running", max_length=16)  # running | promoted | rejected | failed
    candidate_version: str | None = Field(default=None, max_length=64)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    report_path: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime = _time()
    finished_at: datetime | None = _time(index=False, nullable=True)


class InboxItem(SQLModel, table=True):
    """Work accepted from Slack and not yet done (a question to answer, a reaction to record).

    Written before the event is acknowledged, deleted once the work is done; whoever holds the claim
    (`claimed_by` until `claimed_until`) does it, and an expired claim may be taken by any process.
    """

    __tablename__ = "inbox"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=96, unique=True)  # Slack's event_id (or an equivalent unique key)
    kind: str = Field(max_length=16)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))  # what the person wrote (PII-masked)
    received_at: datetime = _time()
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = _time(nullable=True)
    attempts: int = Field(default=0)


class ReviewItem(SQLModel, table=True):
    """A logged question in the agents' review queue (the nightly job's ranking, `training.review`)."""

    __tablename__ = "review_items"

    id: int | None = Field(default=None, primary_key=True)
    answer_id: int = Field(
        sa_column=Column(Integer, ForeignKey("answers.id", ondelete="CASCADE"), unique=True, nullable=False)
    )
    priority: float
    guesses: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [[label, p], ...]
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_version: str | None = Field(default=None, max_length=64)
    created_at: datetime = _time()


class Proposal(SQLModel, table=True):
    """A group of unanswered questions that may be a new intent (intent discovery, `training.discovery`)."""

    __tablename__ = "proposals"

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="waiting", max_length=16, index=True)  # waiting | accepted | dismissed
    answer_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    typical: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    cohesion: float = 0.0
    nearest_intent: str | None = Field(default=None, max_length=128)
    intent: str | None = Field(default=None, max_length=128)
    decided_by: str | None = Field(default=None, max_length=32)
    channel_id: str | None = Field(default=None, max_length=64)
    slack_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = _time()
    decided_at: datetime | None = _time(index=False, nullable=True)


class Posting(SQLModel, table=True):
    """A message the nightly job posts at most once per key (the digest of a day), with where it went."""

    __tablename__ = "postings"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=96, unique=True)
    channel_id: str | None = Field(default=None, max_length=64)
    slack_ts: str | None = Field(default=None, max_length=32)
    content: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _time()
