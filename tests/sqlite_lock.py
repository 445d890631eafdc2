"""Holding SQLite's write lock from another connection, as another worker
process would, while requests go through the app in one event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI

Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def while_locked(
    app: FastAPI, database: str, waiting: Send, meanwhile: Send
) -> tuple[httpx.Response, httpx.Response, bool]:
    """Sends ``waiting`` with the lock held, lets it run until the app's
    group commit (vrm/storage/groupcommit.py) finds the lock taken, then sends
    ``meanwhile``; releases the lock and returns both answers, and whether
    ``waiting`` was still unanswered when ``meanwhile`` was answered."""

    async def run() -> tuple[httpx.Response, httpx.Response, bool]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            other = sqlite3.connect(database, timeout=0)
            other.execute("BEGIN IMMEDIATE")
            try:
                task = asyncio.create_task(waiting(c))
                for _ in range(10_000):  # until its row found the lock taken
                    await asyncio.sleep(0.001)
                    groups = getattr(app.state, "group_commits", {}).values()
                    if any(group.busy for group in groups):
                        break
                other_answer = await meanwhile(c)
                still_waiting = not task.done()
            finally:
                other.rollback()
                other.close()
            return await task, other_answer, still_waiting

    return asyncio.run(run())
