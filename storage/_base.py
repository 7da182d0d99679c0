"""What every part of the repository shares: the engine, sessions, error translation and value checks."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Self, TypeVar

from sqlalchemy import JSON, Engine, literal
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, select

from storage import db
from storage.errors import StorageError
from storage.models import utcnow
from storage.privacy import mask_pii
from storage.text import clean_text

TableT = TypeVar("TableT", bound=SQLModel)


def json_safe(value: Any, *, where: str) -> Any:
    """`value` as plain JSON data: strings cleaned, NaN/infinity as null, numpy scalars and arrays unwrapped.

    Raises:
        StorageError: a value that has no JSON form.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, dict):
        return {clean_text(str(key)): json_safe(item, where=where) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item, where=where) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return json_safe(value.tolist(), where=where)
    raise StorageError(f"{where}: a {type(value).__name__} cannot be stored as JSON; pass numbers, text, lists, dicts.")


class RepositoryBase:
    """Engine, sessions and the value checks shared by every part of `Repository`."""

    def __init__(self, url: str, *, mask_pii: bool = True, upgrade: bool = True) -> None:
        self._engine = db.make_engine(url)
        self.url = db.safe_url(url)
        """The database URL, password hidden."""
        self.mask_pii = mask_pii
        self.dialect = self._engine.dialect.name
        """`sqlite` or `postgresql`."""
        if upgrade:
            try:
                db.upgrade_engine(self._engine)
            except StorageError:
                self._engine.dispose()
                raise

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine: for tables another library keeps in the same database (Slack installations)."""
        return self._engine

    def ping(self) -> None:
        """Check that the database answers (`SELECT 1`); StorageError when it does not."""
        with self._session() as session:
            session.exec(select(literal(1)))

    def close(self) -> None:
        """Close every pooled connection (the repository reconnects if used again)."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on error; errors become StorageError.

        Objects stay readable after the block (expire_on_commit=False): they are returned detached.
        """
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                yield session
                session.commit()
        except SQLAlchemyError as exc:
            raise db.storage_error(exc, self._engine.url) from exc

    # --- values ---------------------------------------------------------------------------------
    def _free_text(self, value: str) -> str:
        """Text a person wrote or will read: cleaned (see storage.text) and PII-masked when masking is on."""
        cleaned = clean_text(value)
        return mask_pii(cleaned) if self.mask_pii else cleaned

    def _optional_free_text(self, value: str | None) -> str | None:
        return None if value is None else self._free_text(value)

    @staticmethod
    def _checked(row: TableT) -> TableT:
        """Clean every string of a row, make its JSON storable and refuse values longer than their column."""
        table = row.__class__.__name__
        for column in row.__table__.columns:  # type: ignore[attr-defined]
            value = getattr(row, column.key)
            if isinstance(column.type, JSON):
                setattr(row, column.key, json_safe(value, where=f"{table}.{column.key}"))
            elif isinstance(value, str):
                value = clean_text(value)
                limit = getattr(column.type, "length", None)
                if limit is not None and len(value) > limit:
                    raise StorageError(
                        f"{table}.{column.key} is {len(value)} characters long but at most {limit} fit: "
                        f"pass a shorter value (got {value[:40]!r}...)."
                    )
                setattr(row, column.key, value)
        return row

    @staticmethod
    def _choice(value: str, allowed: tuple[str, ...], name: str) -> str:
        if value not in allowed:
            raise StorageError(f"{name} must be one of {', '.join(allowed)} (got {value!r}).")
        return value

    @staticmethod
    def _time(value: datetime | None, name: str = "time") -> datetime:
        """`value` (or now) as an aware datetime; naive datetimes are refused (their zone is unknown)."""
        if value is None:
            return utcnow()
        if value.tzinfo is None or value.utcoffset() is None:
            raise StorageError(
                f"{name} {value.isoformat()} has no time zone: pass an aware datetime, e.g. datetime.now(UTC)."
            )
        return value
