"""A batch across worker processes: one interpreter (one GIL) per core for the CPU part of a run.

Threads overlap waiting (on the model, on the cloud); the CPU part of an alert (LangGraph,
pydantic, SQLite: a few ms) runs one thread at a time per process. With a 200 ms model and 50
threads, one process needs about as much CPU time as the ideal wall time itself: more threads
cannot help, more processes can (bench/README.md, workload 2).

Each worker builds its own CostGuard from a picklable factory (its own SQLite connections to the
same file, WAL; its own model and cloud clients) and runs `threads` threads that take alerts from
one shared queue, so no thread waits for another's batch. Outcomes come back in input order.
Workers are forked where the platform allows it (modules already imported: start-up in
milliseconds), spawned elsewhere. A worker that dies stops the batch with WorkerDied; the alerts
it had in flight are unfinished threads in the database (`costguard resume --all`).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.process import BaseProcess
from typing import Any

from costguard.errors import CostguardError, InvalidAlert
from costguard.service import CostGuard, invalid_outcome
from costguard.state import Alert, Outcome, thread_id_for

GuardFactory = Callable[[], CostGuard]  # must pickle where workers are spawned: a dataclass instance, say
_DONE = None  # one per thread: no more work


class WorkerDied(CostguardError):
    """A worker process ended before the batch did."""


def _worker(factory: GuardFactory, threads: int, tasks: Any, results: Any) -> None:
    guard = factory()

    def loop() -> None:
        while (task := tasks.get()) is not _DONE:
            index, alert = task
            try:
                outcome = guard.process_alert(alert)
            except Exception as exc:  # e.g. the database went away: this alert fails, the batch goes on
                outcome = Outcome(
                    alert_id=alert.alert_id,
                    thread_id=thread_id_for(alert.alert_id),
                    status="failed",
                    reason=f"{type(exc).__name__}: {exc}",
                    error_class=type(exc).__name__,
                )
            results.put((index, outcome))

    pool = [threading.Thread(target=loop, name=f"costguard-worker-{n}") for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def process_in_workers(
    factory: GuardFactory, items: Iterable[Alert | InvalidAlert], *, workers: int, concurrency: int
) -> Iterator[Outcome]:
    """Outcomes in input order, as CostGuard.process gives them; `concurrency` threads in all."""
    items = list(items)
    ready: dict[int, Outcome] = {}
    valid = 0
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx: Any = multiprocessing.get_context(method)  # typeshed's BaseContext lacks Process
    tasks = ctx.Queue()
    results = ctx.Queue()
    for index, item in enumerate(items):
        if isinstance(item, InvalidAlert):
            ready[index] = invalid_outcome(item)
        else:
            tasks.put((index, item))
            valid += 1
    threads = max(1, concurrency // workers)
    for _ in range(workers * threads):
        tasks.put(_DONE)
    procs: list[BaseProcess] = [
        ctx.Process(target=_worker, args=(factory, threads, tasks, results), name=f"costguard-worker-{n}")
        for n in range(min(workers, valid))
    ]
    for proc in procs:
        proc.start()
    emitted = received = 0
    try:
        while True:
            while emitted in ready:
                yield ready.pop(emitted)
                emitted += 1
            if received == valid:
                break
            try:
                index, outcome = results.get(timeout=0.5)
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise WorkerDied(f"{dead[0].name} exited with code {dead[0].exitcode}") from None
                if all(p.exitcode is not None for p in procs) and results.empty():
                    raise WorkerDied(f"the workers ended with {valid - received} outcome(s) missing") from None
                continue
            ready[index] = outcome
            received += 1
    finally:
        for proc in procs:
            if proc.is_alive() and received < valid:
                proc.kill()
            proc.join()
        tasks.close()
        results.close()
