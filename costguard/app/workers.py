"""A batch across worker processes: one interpreter (one GIL) per core for the CPU part of a run.

Threads overlap waiting (on the model, on the cloud); the CPU part of an alert (LangGraph,
pydantic, SQLite) runs one thread at a time per process. With a slow model and many threads, one
process can need as much CPU time as the ideal wall time itself: more threads cannot help, more
processes can (bench/README.md, workload 2).

Each worker builds its own CostGuard from the factory (its own SQLite connections to the same
file, WAL; its own model and cloud clients: a factory must never hand a worker objects built in
the parent) and runs its share of the threads, which take alerts from one shared queue, so no
thread waits for another's batch. Outcomes come back in input order.

Workers are forked on Linux (modules already imported: start-up in milliseconds), before any
task is queued and before the caller draws a progress bar, so no other thread of the parent is
running when they fork; elsewhere they are spawned (the factory must pickle). A worker that dies
stops the batch: the others finish the alerts they hold and take no new ones, then WorkerDied is
raised; what was not done is an unfinished thread (`costguard resume --all`) or was never
started. A worker whose parent is gone takes no new alert either.
"""

from __future__ import annotations

import multiprocessing
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.process import BaseProcess
from typing import Any

from costguard.app.batch import invalid_outcome
from costguard.app.runner import CostGuard
from costguard.errors import InvalidAlert, WorkerDied
from costguard.state import Alert, Outcome, thread_id_for

GuardFactory = Callable[[], CostGuard]
_POLL_S = 0.5
_DRAIN_S = 120.0  # how long the others may take to finish their alerts after a worker died


def _parent_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _worker(factory: GuardFactory, threads: int, tasks: Any, results: Any, stop: Any) -> None:
    guard = factory()

    def loop() -> None:
        while not stop.is_set() and _parent_alive():
            try:
                task = tasks.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if task is None:  # no more work
                return
            index, alert = task
            try:
                outcome = guard.process_alert(alert)
            except Exception as exc:  # e.g. the database went away: this alert fails, the batch goes on
                outcome = guard.record_failure(thread_id_for(alert.alert_id), alert.alert_id, exc)
            results.put((index, outcome))

    pool = [threading.Thread(target=loop, name=f"costguard-worker-{n}") for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def _shares(workers: int, concurrency: int, alerts: int) -> list[int]:
    """Threads per worker: `concurrency` in all, over at most `workers` processes (never more than alerts)."""
    count = min(workers, concurrency, alerts)
    return [concurrency // count + (1 if n < concurrency % count else 0) for n in range(count)]


def process_in_workers(
    factory: GuardFactory, items: Iterable[Alert | InvalidAlert], *, workers: int, concurrency: int
) -> Iterator[Outcome]:
    """Outcomes in input order, as CostGuard.process gives them. The workers start now (not on
    the first `next`); iterate the result to the end, or close it, to let them go."""
    items = list(items)
    valid = [(index, item) for index, item in enumerate(items) if not isinstance(item, InvalidAlert)]
    ctx: Any = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    tasks, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    shares = _shares(workers, concurrency, len(valid)) if valid else []
    procs: list[BaseProcess] = [
        ctx.Process(target=_worker, args=(factory, share, tasks, results, stop), name=f"costguard-worker-{n}")
        for n, share in enumerate(shares)
    ]
    for proc in procs:  # fork first: the queue's feeder thread starts with the first put
        proc.start()
    for task in valid:
        tasks.put(task)
    for _ in range(sum(shares)):
        tasks.put(None)
    return _collect(items, len(valid), procs, tasks, results, stop)


def _collect(
    items: list[Alert | InvalidAlert], valid: int, procs: list[BaseProcess], tasks: Any, results: Any, stop: Any
) -> Iterator[Outcome]:
    ready = {i: invalid_outcome(item) for i, item in enumerate(items) if isinstance(item, InvalidAlert)}
    emitted = received = 0
    try:
        while True:
            while emitted in ready:
                yield ready.pop(emitted)
                emitted += 1
            if received == valid:
                return
            try:
                index, outcome = results.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise WorkerDied(f"{dead[0].name} exited with code {dead[0].exitcode}") from None
                if all(p.exitcode is not None for p in procs):
                    raise WorkerDied(f"the workers ended with {valid - received} outcome(s) missing") from None
                continue
            ready[index] = outcome
            received += 1
    finally:
        stop.set()  # finished, failed or abandoned: no worker takes a new alert
        if received < valid:
            tasks.cancel_join_thread()  # unread tasks must not keep this process from exiting
        for proc in procs:
            proc.join(_DRAIN_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        tasks.close()
        results.close()
