"""Repository part: the frozen evaluation set, the model registry and training runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage._base import RepositoryBase
from storage.errors import StorageError
from storage.models import EvalExample, ModelVersion, TrainingRun, utcnow
from storage.text import clean_text, text_key

MODEL_STATUSES: tuple[str, ...] = ("candidate", "production", "retired", "rejected")
_INSERT_CHUNK = 500
_PROMOTION_LOCK = 0x5B07_0001  # pg_advisory_xact_lock key held while changing the production version


class Registry(RepositoryBase):
    """Frozen evaluation set, model versions (exactly one in production) and nightly training runs."""

    # --- frozen evaluation set ---------------------------------------------------------------
    def eval_examples(self) -> list[EvalExample]:
        """The frozen evaluation set, in the order it was added."""
        with self._session() as session:
            return list(session.exec(select(EvalExample).order_by(col(EvalExample.id))).all())

    def add_eval_examples(self, examples: Sequence[tuple[str, str, str]]) -> int:
        """Add (text, label, origin) rows not yet present (by normalised text); returns how many were new.

        Texts are PII-masked when masking is on; "the same text" is `storage.text.text_key` of the stored
        text (case, spacing and Unicode form ignored). Blank texts are skipped. Safe under concurrent callers.

        Args:
            examples: (text, label, origin) with origin "seed" or "log".
        """
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for question, label, origin in examples:
            stored = self._free_text(question)
            if not stored.strip():
                continue
            key = text_key(stored)
            if key not in rows:
                row = self._checked(EvalExample(text_key=key, text=stored, label=label, origin=origin, created_at=now))
                rows[key] = row.model_dump(exclude={"id"})
        if not rows:
            return 0
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        values = list(rows.values())
        added = 0
        with self._session() as session:
            for start in range(0, len(values), _INSERT_CHUNK):
                statement = (
                    insert(EvalExample)
                    .values(values[start : start + _INSERT_CHUNK])
                    .on_conflict_do_nothing(index_elements=["text_key"])
                    .returning(col(EvalExample.id))
                )
                added += len(session.exec(statement).all())
        return added

    # --- model registry ---------------------------------------------------------------------------
    def register_model(
        self,
        version: str,
        *,
        path: str,
        metrics: dict[str, Any],
        dataset_hash: str,
        status: str = "candidate",
        created_at: datetime | None = None,
    ) -> ModelVersion:
        """Add a trained model to the registry.

        Args:
            version: unique name of the version (its directory under models/).
            path: where the model and its index live.
            metrics: evaluation results (JSON; NaN and infinity are stored as null).
            dataset_hash: hash of the training data.
            status: "candidate" (default), "production" (promoted at once, retiring the current one),
                "retired" or "rejected".
            created_at: when (default now).

        Raises:
            StorageError: the version is already registered, or an unknown status.
        """
        self._choice(status, MODEL_STATUSES, "status")
        model = self._checked(
            ModelVersion(
                version=version,
                status="candidate" if status == "production" else status,
                path=path,
                metrics=metrics,
                dataset_hash=dataset_hash,
                created_at=self._time(created_at, "created_at"),
            )
        )
        with self._session() as session:
            session.add(model)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                raise StorageError(
                    f"model version {model.version!r} is already registered: give the new model another version."
                ) from None
            if status == "production":
                self._make_production(session, model)
        return model

    def models(self) -> list[ModelVersion]:
        """All versions, newest first."""
        query = select(ModelVersion).order_by(col(ModelVersion.created_at).desc(), col(ModelVersion.id).desc())
        with self._session() as session:
            return list(session.exec(query).all())

    def get_model(self, version: str) -> ModelVersion | None:
        """The registered version with this name, or None."""
        with self._session() as session:
            return session.exec(select(ModelVersion).where(ModelVersion.version == clean_text(version))).first()

    def production_model(self) -> ModelVersion | None:
        """The version in production, or None before the first promotion."""
        with self._session() as session:
            return session.exec(select(ModelVersion).where(ModelVersion.status == "production")).first()

    def previous_production(self, current: ModelVersion | None = None) -> ModelVersion | None:
        """The rollback target: the newest retired version created before `current` (default: production; any
        retired one when there is none). Successive rollbacks walk back through the versions that were in
        production."""
        current = current if current is not None else self.production_model()
        retired = [
            m
            for m in self.models()
            if m.status == "retired"
            and (current is None or (m.created_at, m.id or 0) < (current.created_at, current.id or 0))
        ]
        return max(retired, key=lambda m: (m.created_at, m.id or 0), default=None)

    def promote(self, version: str) -> ModelVersion:
        """Make `version` production and retire the previous one, in one transaction.

        Promotions are serialised (an advisory lock on PostgreSQL; SQLite serialises writers anyway) and a
        unique partial index guarantees at most one production version whatever else writes the table.

        Raises:
            StorageError: unknown version.
        """
        for _attempt in range(2):
            with self._session() as session:
                model = session.exec(select(ModelVersion).where(ModelVersion.version == clean_text(version))).first()
                if model is None:
                    raise StorageError(
                        f"no model version {version!r} in the registry: see `supportbot model list` for the "
                        "registered versions."
                    )
                if model.status == "production":
                    return model
                try:
                    self._make_production(session, model)
                    return model
                except IntegrityError:
                    session.rollback()  # a concurrent promotion won the race; try again on fresh data
        raise StorageError(f"could not promote {version!r}: other promotions kept running at the same time; retry.")

    def _make_production(self, session: Session, model: ModelVersion) -> None:
        if self.dialect == "postgresql":  # serialise promotions (SQLite already serialises all writers)
            session.exec(select(func.pg_advisory_xact_lock(_PROMOTION_LOCK))).one()
        session.exec(
            update(ModelVersion)
            .where(col(ModelVersion.status) == "production", col(ModelVersion.id) != model.id)
            .values(status="retired")
            .execution_options(synchronize_session=False)
        )
        model.status = "production"
        model.promoted_at = utcnow()
        session.add(model)
        session.flush()

    def set_model_status(self, version: str, status: str) -> None:
        """Set a version's status to "candidate", "retired" or "rejected" (use `promote` for production).

        Raises:
            StorageError: unknown version or status, or "production".
        """
        if status == "production":
            raise StorageError("use promote() to put a version in production (it retires the previous one).")
        self._choice(status, MODEL_STATUSES, "status")
        with self._session() as session:
            model = session.exec(select(ModelVersion).where(ModelVersion.version == clean_text(version))).first()
            if model is None:
                raise StorageError(f"no model version {version!r} in the registry: see `supportbot model list`.")
            model.status = status
            session.add(model)

    # --- training runs ---------------------------------------------------------------------------
    def start_training_run(self, *, trigger: str) -> TrainingRun:
        """Record the start of a nightly job run (status "running").

        Args:
            trigger: what started it, e.g. "cron", "cli", "manual".
        """
        run = self._checked(TrainingRun(trigger=trigger, status="running", started_at=utcnow()))
        with self._session() as session:
            session.add(run)
        return run

    def finish_training_run(
        self,
        run_id: int,
        *,
        status: str,
        candidate_version: str | None = None,
        metrics: dict[str, Any] | None = None,
        error: str | None = None,
        report_path: str | None = None,
    ) -> TrainingRun:
        """Record how a run ended ("promoted", "rejected" or "failed"); `metrics=None` keeps the stored ones.

        Raises:
            StorageError: no such run.
        """
        with self._session() as session:
            run = session.get(TrainingRun, run_id)
            if run is None:
                raise StorageError(f"no training run with id {run_id}: start one with start_training_run().")
            run.status = status
            run.candidate_version = candidate_version
            if metrics is not None:
                run.metrics = metrics
            run.error = error
            run.report_path = report_path
            run.finished_at = utcnow()
            session.add(self._checked(run))
        return run

    def training_runs(self, limit: int = 20) -> list[TrainingRun]:
        """The most recent runs, newest first."""
        query = (
            select(TrainingRun)
            .order_by(col(TrainingRun.started_at).desc(), col(TrainingRun.id).desc())
            .limit(max(limit, 0))
        )
        with self._session() as session:
            return list(session.exec(query).all())
