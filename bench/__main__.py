"""`python -m bench [--quick] [--json]`: costguard's figures next to their baselines, measured in one run.

Writes bench/results/latest.json and latest.md (copied to quick.* or full.* by mode), latest.pyperf.json
(readable by `python -m pyperf stats|compare_to`), and bench/results/profile.{json,md} (profile-quick.* with
--quick) unless --no-profile.
See bench/README.md for what each workload measures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import postgres as bench_postgres
from bench import profile as profiling
from bench import watch as bench_watch
from bench import workloads as w
from bench.harness import cli_logging
from bench.report import RESULTS, Row, machine, markdown, write

WORKLOADS = ("1", "2", "3", "4", "5", "6", "7", "8")


def to_pyperf(rows: list[Row], path: Path) -> None:
    """Each figure as a pyperf benchmark (seconds or bytes), costguard and baseline side by side."""
    import pyperf  # type: ignore[import-untyped]

    benches = []
    for row in rows:
        scale = {"ms": 1e-3, "s": 1.0, "B": 1.0}.get(row.unit)
        if scale is None:
            continue
        unit = "byte" if row.unit == "B" else "second"
        for who, stat in (("costguard", row.costguard), (row.baseline_name, row.baseline)):
            if stat is None or any(v <= 0 for v in stat.values):
                continue
            run = pyperf.Run(
                [v * scale for v in stat.values],
                metadata={"name": f"{row.workload}: {row.metric} [{who}]", "unit": unit},
                collect_metadata=False,
            )
            benches.append(pyperf.Benchmark([run]))
    if benches:
        pyperf.BenchmarkSuite(benches).dump(str(path), replace=True)


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    sizes = w.QUICK if args.quick else w.FULL
    only = set(args.only.split(",")) if args.only else set(WORKLOADS)
    root: Path | None = args.dir
    rows: list[Row] = []
    timings: dict[str, float] = {}
    meta = machine()
    meta["mode"] = "quick" if args.quick else "full"
    meta["load_average_start"] = [round(x, 2) for x in os.getloadavg()]
    meta["sizes"] = sizes.__dict__
    storage_run = None

    def step(name: str, fn: Callable[[], list[Row]]) -> None:
        log(f"[{name}]")
        started = time.perf_counter()
        rows.extend(fn())
        timings[name] = round(time.perf_counter() - started, 1)

    if "1" in only:
        step("1 overhead", lambda: w.overhead(sizes.overhead_n, sizes.overhead_reps, root, log))
    if "2" in only:
        step("2 overlap", lambda: w.overlap(sizes.overlap_n, sizes.overlap_reps, root, log))
    if "3" in only:
        step("3 resume", lambda: w.resume(sizes.resume_n, sizes.resume_reps, root, log))
        step("3 listings", lambda: w.listings(sizes.pending, sizes.history, sizes.query_reps, root, log))
    if "4" in only or "5" in only:

        def storage() -> list[Row]:
            nonlocal storage_run
            found, storage_run = w.storage(sizes.storage_n, root, log)
            return found if "4" in only else []

        step("4 storage", storage)
    if "5" in only and storage_run is not None:
        run5 = storage_run
        step("5 tokens", lambda: w.tokens(run5, root, log))
    if "7" in only:
        n7 = 200 if args.quick else 1_000
        step("7 watch", lambda: bench_watch.watch(n7 // 2, 1, root, log, latency=0.0, concurrency=4))
        step("7 watch (200 ms)", lambda: bench_watch.watch(n7, 1, root, log, latency=0.2, concurrency=50))
    if "8" in only:
        step("8 postgres", lambda: bench_postgres.postgres(sizes, root, log))
    if "6" in only and not args.no_llm:
        step("6 local model", lambda: w.local_model(sizes.llm_per_kind, log, sizes.llm_budget_s))
    profile_result = None
    if not args.no_profile and "1" in only:
        log("[profile]")
        started = time.perf_counter()
        profile_result = profiling.profile(sizes.profile_n, sizes.profile_reps, root, log)
        name = "profile" if meta["mode"] == "full" else "profile-quick"  # a quick profile never replaces a full one
        write(name, {"meta": meta, "profile": profile_result}, profiling.markdown(profile_result, meta))
        timings["profile"] = round(time.perf_counter() - started, 1)
    meta["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    meta["seconds"] = timings
    title = f"costguard benchmarks ({meta['mode']})"
    payload = {"meta": meta, "rows": [r.json() for r in rows]}
    if profile_result is not None:
        payload["profile_summary"] = {
            "attribution_ms_per_alert": profile_result["attribution_ms_per_alert"],
            "variants": profile_result["variants"],
        }
    md = markdown(rows, meta, title)
    write("latest", payload, md)
    if only == set(WORKLOADS):
        write(meta["mode"], payload, md)  # quick.* / full.*: the last complete run of each mode stays
    else:
        write(f"only-{'-'.join(sorted(only))}", payload, md)  # a partial run never replaces a complete one
    to_pyperf(rows, RESULTS / "latest.pyperf.json")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats (a few minutes on 2 cores)")
    parser.add_argument("--json", action="store_true", help="print the JSON report on stdout (progress on stderr)")
    parser.add_argument("--only", help="comma-separated workloads to run, e.g. 1,3 (default: all)")
    parser.add_argument("--no-llm", action="store_true", help="skip workload 6 (the embedded local model)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cost attribution and what-if variants")
    parser.add_argument("--dir", type=Path, default=None, help="where scratch databases go (default: the temp dir)")
    args = parser.parse_args(argv)
    cli_logging()
    log: Callable[[str], None] = (
        (lambda s: print(s, file=sys.stderr, flush=True)) if args.json else (lambda s: print(s, flush=True))
    )
    started = time.perf_counter()
    payload = run(args, log)
    if args.json:
        print(json.dumps(payload, indent=1, default=str))
    else:
        print()
        print((RESULTS / "latest.md").read_text(encoding="utf-8"))
        print(f"wrote {RESULTS / 'latest.json'}, {RESULTS / 'latest.md'} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
