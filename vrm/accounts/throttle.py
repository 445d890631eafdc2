"""Login throttling, per account and per client address.

Both counters are keyed by blind indexes. An unknown email is counted exactly
like a known one, so the throttle cannot be used to find accounts.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from vrm.accounts.models import LoginThrottle
from vrm.errors import TooManyRequests
from vrm.settings import Settings


def check(session: Session, *, keys: list[bytes], now: datetime) -> None:
    """Raise TooManyRequests if any key is locked out."""
    waits = []
    for key in keys:
        row = session.get(LoginThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            waits.append((row.locked_until - now).total_seconds())
    if waits:
        raise TooManyRequests(
            "Too many failed attempts; try again later.", retry_after=math.ceil(max(waits))
        )


def record_failure(
    session: Session, *, key: bytes, limit: int, settings: Settings, now: datetime
) -> None:
    """Count one failure and commit it; lock the key once it reaches limit,
    doubling the lockout for every further failure."""
    for _ in range(3):
        row = session.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_started_at=now)
        elif now - row.window_started_at > timedelta(seconds=settings.login_window_seconds) and (
            row.locked_until is None or row.locked_until <= now
        ):
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= limit:
            doublings = min(row.failures - limit, 20)
            seconds = min(
                settings.login_lockout_seconds * 2**doublings, settings.login_lockout_max_seconds
            )
            row.locked_until = now + timedelta(seconds=seconds)
        session.add(row)
        try:
            session.commit()
            return
        except IntegrityError:
            # Another request inserted the same counter first: count on it.
            session.rollback()


def clear(session: Session, *, key: bytes) -> None:
    row = session.get(LoginThrottle, key)
    if row is not None:
        session.delete(row)
