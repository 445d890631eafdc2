"""The background timer (vrm/schedule.py): it runs its job again and again,
and a job that fails is logged and tried again, never ending the thread."""

from __future__ import annotations

import logging
import threading

import pytest

from vrm.schedule import Every


def test_the_job_runs_first_then_every_interval_until_stopped() -> None:
    ran = threading.Event()
    calls: list[int] = []

    def job(stopping: threading.Event) -> None:
        assert not stopping.is_set()
        calls.append(1)
        if len(calls) == 3:
            ran.set()

    every = Every("test job", job, interval=0.01, first=0.0)
    every.start()
    assert ran.wait(10)
    every.stop()
    stopped_at = len(calls)
    assert stopped_at >= 3
    threading.Event().wait(0.05)
    assert len(calls) == stopped_at  # nothing after stop()


def test_a_failing_job_is_logged_and_runs_again(caplog: pytest.LogCaptureFixture) -> None:
    recovered = threading.Event()
    calls: list[int] = []

    def job(_: threading.Event) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("no such table: secret-value-never-logged")
        recovered.set()

    every = Every("purge", job, interval=0.01, first=0.0)
    with caplog.at_level(logging.WARNING, logger="vrm.schedule"):
        every.start()
        assert recovered.wait(10)
        every.stop()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "purge failed (RuntimeError); it runs again in 0.01 s")
    ]
    assert caplog.records[0].exc_info is None  # the text may carry parameters


def test_the_first_run_waits_for_first() -> None:
    calls: list[int] = []
    every = Every("test job", lambda _: calls.append(1), interval=0.01, first=60.0)
    every.start()
    threading.Event().wait(0.05)
    every.stop()
    assert calls == []
