"""Several processes opening one new SQLite file at the same moment (`process --workers N` on a fresh database):
each gets a working store; none fails with "database is locked" while another sets WAL or creates the schema."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from costguard.tools.store import Store

PROCESSES = 6
ROUNDS = 20


def _open(path: str, barrier: object, errors: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        store = Store(path)
        store.audit_rows("nobody")  # a read through the schema
    except Exception as exc:  # reported to the test, which fails with it
        errors.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    failures: list[str] = []
    for round_ in range(ROUNDS):
        path = str(tmp_path / f"race-{round_}.db")
        barrier, errors = ctx.Barrier(PROCESSES), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(path, barrier, errors)) for _ in range(PROCESSES)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
            assert proc.exitcode == 0
        while not errors.empty():
            failures.append(errors.get())
    assert failures == []
