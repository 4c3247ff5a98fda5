"""Resource locks: one plan acts on a resource at a time, across threads, processes and (later) machines.

A lock is a row naming the thread that holds it. It is re-entrant (a resumed thread takes its own lock
again) and expires after `ttl` (a worker killed while holding it does not block the resource for ever).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from costguard.errors import ResourceBusy
from costguard.tools.store.sqlite import Store

DEFAULT_TTL = timedelta(minutes=15)
POLL_S = 0.1


def try_lock(store: Store, resource_id: str, thread_id: str, now: datetime, ttl: timedelta = DEFAULT_TTL) -> str | None:
    """Take the lock (or take it over when stale, or keep our own); None when taken, else the holder's thread."""
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT thread_id, acquired_at FROM cg_resource_locks WHERE resource_id = ?", (resource_id,)
        ).fetchone()
        if row is not None and row["thread_id"] != thread_id and datetime.fromisoformat(row["acquired_at"]) > now - ttl:
            return str(row["thread_id"])
        conn.execute(
            "INSERT INTO cg_resource_locks (resource_id, thread_id, acquired_at) VALUES (?,?,?)"
            " ON CONFLICT(resource_id) DO UPDATE SET thread_id=excluded.thread_id, acquired_at=excluded.acquired_at",
            (resource_id, thread_id, now.isoformat()),
        )
    return None


def unlock(store: Store, resource_id: str, thread_id: str) -> None:
    """Release the lock if we hold it."""
    with store.transaction() as conn:
        conn.execute("DELETE FROM cg_resource_locks WHERE resource_id = ? AND thread_id = ?", (resource_id, thread_id))


@contextmanager
def resource_lock(
    store: Store, resource_id: str, thread_id: str, clock: Callable[[], datetime], *, wait_s: float = 60.0
) -> Iterator[None]:
    """Hold the resource for the block; wait up to `wait_s` for another holder, then ResourceBusy (retryable)."""
    deadline = time.monotonic() + wait_s
    while (holder := try_lock(store, resource_id, thread_id, clock())) is not None:
        if time.monotonic() > deadline:
            raise ResourceBusy(f"{resource_id} is being acted on by {holder}")
        time.sleep(POLL_S)
    try:
        yield
    finally:
        unlock(store, resource_id, thread_id)
