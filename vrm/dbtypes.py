"""Column types shared by the tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no time zones and hands back naive values; this stores UTC and
    always returns aware datetimes so comparisons never mix the two.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - the column type guarantees it
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite, one step each way instead of two, in C: the text SQLAlchemy's
    # SQLite DATETIME writes and reads ("2026-12-05 15:05:40.532895", always
    # with microseconds) is what isoformat(" ", "microseconds") writes and
    # fromisoformat reads, far cheaper
    # (docs/performance.md#the-drivers-cursor-and-decoding). A token request
    # binds four datetimes and reads as many. Other databases go through
    # process_bind_param and process_result_value as usual.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is UTC:  # most: "...+00:00", without the offset
                return value.isoformat(" ", "microseconds")[:-6]
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        fallback = super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            try:
                # The offset read with the rest: replace(tzinfo=UTC) after
                # would cost more than the parse. (A date alone reads as
                # naive, the offset ignored: the long way below.)
                parsed = datetime.fromisoformat(value + "+00:00")
                if parsed.tzinfo is UTC:
                    return parsed
            except (TypeError, ValueError):
                pass
            try:
                parsed = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                return fallback(value) if fallback is not None else None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

        return process


def _system_now() -> datetime:
    return datetime.now(UTC)


# The one clock of the app: every module asks utcnow(), and a test sets the
# time for all of them here (tests/conftest.py, ``clock``).
now: Callable[[], datetime] = _system_now


def utcnow() -> datetime:
    return now()
