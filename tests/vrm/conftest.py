"""Fixtures for the store's tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest


@dataclass
class Clock:
    now: datetime

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the time the account service and its sessions see, so lockouts
    and session times are exact."""
    frozen = Clock(datetime.now(UTC))
    monkeypatch.setattr("vrm.accounts.service.utcnow", lambda: frozen.now)
    monkeypatch.setattr("vrm.accounts.sessions.utcnow", lambda: frozen.now)
    return frozen
