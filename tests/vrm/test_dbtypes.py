"""UTCDateTime on SQLite writes and reads the text SQLAlchemy's own SQLite
DATETIME does (rows written before stay readable, and SQL compares the
text as before), as timezone-aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.sqlite import DATETIME

from vrm.dbtypes import UTCDateTime

SQLITE = sqlite.dialect()
INSTANTS = [
    datetime(2026, 12, 5, 15, 5, 40, 532895, tzinfo=UTC),
    datetime(2026, 12, 5, 15, 5, 40, tzinfo=UTC),  # no microseconds
    datetime(2026, 12, 5, 17, 5, 40, 1, tzinfo=timezone(timedelta(hours=2))),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("instant", INSTANTS)
def test_writes_what_sqlalchemy_writes(instant: datetime) -> None:
    ours = UTCDateTime().bind_processor(SQLITE)
    theirs = DATETIME().bind_processor(SQLITE)
    assert ours is not None
    assert theirs is not None
    assert ours(instant) == theirs(instant.astimezone(UTC).replace(tzinfo=None))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05 15:05:40.532895", datetime(2026, 12, 5, 15, 5, 40, 532895, tzinfo=UTC)),
        ("2026-12-05 15:05:40", datetime(2026, 12, 5, 15, 5, 40, tzinfo=UTC)),
        ("2026-12-05 15:05:40.5", datetime(2026, 12, 5, 15, 5, 40, 500000, tzinfo=UTC)),
        ("2026-12-05", datetime(2026, 12, 5, tzinfo=UTC)),
        ("0999-01-02 03:04:05.000006", datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ],
)
def test_reads_what_sqlalchemy_reads_as_utc(text: str, expected: datetime) -> None:
    ours = UTCDateTime().result_processor(SQLITE, None)
    theirs = DATETIME().result_processor(SQLITE, None)
    assert ours is not None
    assert theirs is not None
    read = ours(text)
    assert read == expected
    assert read.tzinfo is UTC
    assert read == theirs(text).replace(tzinfo=UTC)


def test_null_stays_null() -> None:
    bind = UTCDateTime().bind_processor(SQLITE)
    result = UTCDateTime().result_processor(SQLITE, None)
    assert bind is not None
    assert result is not None
    assert bind(None) is None
    assert result(None) is None


def test_a_naive_datetime_is_refused() -> None:
    bind = UTCDateTime().bind_processor(SQLITE)
    assert bind is not None
    with pytest.raises(ValueError, match="naive datetime"):
        bind(datetime(2026, 12, 5, 15, 5, 40))  # noqa: DTZ001 - naive on purpose


def test_postgresql_keeps_timezone_aware_values() -> None:
    bind = UTCDateTime().bind_processor(postgresql.psycopg.dialect())
    value = datetime(2026, 12, 5, 17, 5, 40, tzinfo=timezone(timedelta(hours=2)))
    sent = bind(value) if bind is not None else value
    assert sent == value
    assert sent.tzinfo is not None
