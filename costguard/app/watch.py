"""`costguard watch`: a long-running consumer of one SQS queue (SNS- or EventBridge-fed), a periodic scan, and the
plans whose grace period is over (looked for every `due_every`).

Delivery is at least once; effects stay exactly once: every thread a message starts derives its id from the
message's source id, so a redelivery changes nothing. A message is deleted only when every thread it started is
durable (finished, or paused for review); while it is worked on, its visibility is extended. A failure worth
another try (the model or the cloud unreachable) leaves the message to come back and resume its threads, until
`max_receives` deliveries; then it is deleted, its outcome recorded as it stands. A malformed message is recorded
(`invalid_input`, audited) and deleted at once: parsing is deterministic, another delivery would fail the same
way, so it is not left to the queue's redrive policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from costguard.app.scan_region import scan_region
from costguard.app.sourcing import Handled, SourceRunner, summarise
from costguard.errors import ConfigError, CostguardError
from costguard.state import Outcome
from costguard.tools.queue import Message, Queue
from costguard.tools.store.sources import record_source

log = structlog.get_logger(__name__)


@dataclass
class WatchStats:
    """What the watcher has seen so far (the progress line and the Prometheus gauges)."""

    received: int = 0
    in_flight: int = 0
    done: int = 0
    deleted: int = 0
    left_for_redelivery: int = 0
    invalid: int = 0
    ignored: int = 0
    scans: int = 0
    due: int = 0  # scheduled plans resumed at the end of their grace period
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


@dataclass
class WatchOptions:
    concurrency: int = 4
    visibility_s: int = 120  # how long a received message stays invisible; extended at half that while worked on
    wait_s: int = 20  # SQS long poll
    max_receives: int = 5  # then a message that keeps failing is deleted, its outcome recorded as it stands
    once: bool = False  # drain what is there, then stop
    scan_every: timedelta | None = None  # the observe scan as a periodic source in the same loop
    scan_region: str = "us-east-1"
    due_every: timedelta = timedelta(minutes=1)  # how often plans whose grace period is over are looked for


class Watcher:
    """Takes messages from `queue` and runs them through `runner`, `concurrency` at a time."""

    def __init__(
        self,
        runner: SourceRunner,
        queue: Queue,
        options: WatchOptions,
        *,
        on_done: Callable[[Handled], None] = lambda handled: None,
        on_due: Callable[[Outcome], None] = lambda outcome: None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.runner = runner
        self.queue = queue
        self.options = options
        self.on_done = on_done
        self.on_due = on_due
        self.stats = WatchStats()
        self._clock = clock or runner.guard.deps.clock
        self._in_flight: dict[str, Message] = {}
        self._lock = threading.Lock()
        self._last_scan: datetime | None = None
        self._last_due: datetime | None = None

    # --- one message ---------------------------------------------------------------------------

    def handle(self, message: Message) -> Handled:
        """Run one message; delete it when its work is durable (or it has been delivered too often)."""
        try:
            handled = self.runner.handle_body(message.body, message_id=message.message_id)
        finally:
            with self._lock:
                self._in_flight.pop(message.receipt, None)
        status = handled.source.status
        self.stats.add(done=1, in_flight=-1, invalid=status == "invalid_input", ignored=status == "ignored")
        if handled.durable or message.receive_count >= self.options.max_receives:
            self.queue.delete(message)
            self.stats.add(deleted=1)
        else:
            self.stats.add(left_for_redelivery=1)
            log.warning("message_left_for_redelivery", message_id=message.message_id, reason=handled.source.reason)
        log.info("message_done", message_id=message.message_id, source_id=handled.source.source_id, status=status)
        self.on_done(handled)
        return handled

    # --- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> WatchStats:
        """Until `stop` is set (SIGTERM/SIGINT: take nothing new, finish what is in flight) or, with `once`, the
        queue is empty."""
        heartbeat = threading.Thread(target=self._extend_visibility, args=(stop,), daemon=True)
        heartbeat.start()
        pending: set[Future[Handled]] = set()
        with ThreadPoolExecutor(max_workers=self.options.concurrency, thread_name_prefix="watch") as pool:
            while not stop.is_set():
                self._maybe_scan()
                self._maybe_run_due(stop)
                pending = {f for f in pending if not f.done()}
                room = self.options.concurrency - len(pending)
                if room <= 0:
                    time.sleep(0.05)
                    continue
                wait_s = 1 if self.options.once else self.options.wait_s
                messages = self.queue.receive(max_messages=room, wait_s=wait_s, visibility_s=self.options.visibility_s)
                if not messages and self.options.once and not pending:
                    break
                self.stats.add(received=len(messages), in_flight=len(messages))
                for message in messages:
                    with self._lock:
                        self._in_flight[message.receipt] = message
                    pending.add(pool.submit(self._safely, message))
        stop.set()  # the heartbeat ends with the loop
        return self.stats

    def _safely(self, message: Message) -> Handled:
        try:
            return self.handle(message)
        except CostguardError as exc:  # the queue or the store failed: the message comes back later
            self.stats.add(in_flight=-1)
            log.error("message_failed", message_id=message.message_id, error_class=type(exc).__name__, error=str(exc))
            raise

    def _extend_visibility(self, stop: threading.Event) -> None:
        period = max(1.0, self.options.visibility_s / 2)
        while not stop.wait(period):
            with self._lock:
                working = list(self._in_flight.values())
            for message in working:
                try:
                    self.queue.extend(message, self.options.visibility_s)
                except CostguardError as exc:  # minor: at worst the message is delivered again, harmlessly
                    log.warning("visibility_not_extended", message_id=message.message_id, error=str(exc))

    def _maybe_scan(self) -> None:
        every = self.options.scan_every
        if every is None:
            return
        now = self._clock()
        if self._last_scan is not None and now - self._last_scan < every:
            return
        self._last_scan = now
        runner = self.runner
        if runner.cloud is None:
            raise ConfigError("--scan-every needs the EC2 cloud")
        region = self.options.scan_region
        found = scan_region(runner.cloud, runner.prices, region=region, now=now, policy=runner.guard.deps.policy)
        outcomes = [runner.guard.process_alert(alert) for alert in found.alerts]
        self.stats.add(scans=1)
        source_id = f"scan:{region}:{now:%Y%m%dT%H%M}"
        note = f"periodic scan of {region}: {found.note}"
        source = summarise(source_id, "scan", outcomes, message_id=None, note=note)
        record_source(runner.guard.deps.store, source)
        self.on_done(Handled(source, outcomes))

    def _maybe_run_due(self, stop: threading.Event) -> None:
        """Plans whose grace period is over: checked on fresh facts, then they act, are called off or go to a
        person. One failing thread does not keep the others waiting; a stop is honoured between threads."""
        now = self._clock()
        if self._last_due is not None and now - self._last_due < self.options.due_every:
            return
        self._last_due = now
        guard = self.runner.guard
        try:
            due = guard.due_threads()
        except Exception as exc:  # the store failed (a pool timeout, say): the next look tries again
            log.error("due_check_failed", error_class=type(exc).__name__, error=str(exc))
            return
        for thread_id in due:
            if stop.is_set():
                return
            try:
                outcome = guard.resume_due(thread_id)
            except Exception as exc:  # this thread's turn comes again at the next look
                log.error("due_run_failed", thread_id=thread_id, error_class=type(exc).__name__, error=str(exc))
                continue
            self.stats.add(due=1)
            log.info("schedule_due", thread_id=outcome.thread_id, status=outcome.status)
            self.on_due(outcome)


class WatchCollector(Collector):
    """The watcher's counters as Prometheus metrics (`costguard watch --metrics-port`)."""

    def __init__(self, stats: WatchStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        with self.stats.lock:
            counts = {name: getattr(self.stats, name) for name in COUNTED}
        messages = CounterMetricFamily(
            "costguard_watch_messages", "Queue messages by what became of them", labels=["what"]
        )
        for name in ("received", "done", "deleted", "left_for_redelivery", "invalid", "ignored"):
            messages.add_metric([name], counts[name])
        yield messages
        in_flight = GaugeMetricFamily("costguard_watch_in_flight", "Messages being worked on now")
        in_flight.add_metric([], counts["in_flight"])
        yield in_flight
        scans = CounterMetricFamily("costguard_watch_scans", "Periodic observe scans run")
        scans.add_metric([], counts["scans"])
        yield scans
        due = CounterMetricFamily("costguard_watch_due", "Scheduled plans resumed at the end of their grace period")
        due.add_metric([], counts["due"])
        yield due


COUNTED = ("received", "in_flight", "done", "deleted", "left_for_redelivery", "invalid", "ignored", "scans", "due")


def registry_for(stats: WatchStats) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatchCollector(stats))
    return registry
