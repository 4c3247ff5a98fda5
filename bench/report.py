"""Result rows, the machine they were measured on, and the JSON / markdown writers."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import Stat

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("langgraph", "langgraph-checkpoint", "langgraph-checkpoint-sqlite", "langchain-core", "pydantic", "pyperf")


@dataclass
class Row:
    """One figure: costguard's, the baseline's from the same run, and their ratio.

    `ratio` is always costguard ÷ baseline, so that < 1 means costguard is smaller (faster,
    lighter); `target` says which way the requirement points.
    """

    workload: str
    metric: str
    unit: str
    costguard: Stat
    baseline_name: str
    baseline: Stat | None = None
    ratio: Stat | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "metric": self.metric,
            "unit": self.unit,
            "costguard": self.costguard.json(),
            "baseline_name": self.baseline_name,
            "baseline": self.baseline.json() if self.baseline else None,
            "ratio_costguard_over_baseline": self.ratio.json() if self.ratio else None,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "extra": self.extra,
        }


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return ""
    return out.stdout.strip()


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "uname_m": platform.machine(),
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "costguard")),
        "versions": versions,
    }


def _fmt(stat: Stat | None, digits: int) -> str:
    return "—" if stat is None else stat.fmt(digits)


def digits_for(stat: Stat) -> int:
    if all(float(v).is_integer() for v in stat.values):
        return 0
    size = abs(stat.median)
    if size >= 100:
        return 0
    if size >= 10:
        return 1
    if size >= 0.1:
        return 2
    return 4


def markdown(rows: list[Row], meta: dict[str, Any], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"Measured {meta['date']} on `{meta['uname_m']}`, nproc {meta['nproc']}, Python {meta['python']} "
        f"({meta['platform']}); costguard at `{meta['git_commit']}`"
        + (" with uncommitted changes" if meta.get("git_dirty") else "")
        + f"; mode: {meta.get('mode', '?')}.",
        "",
        "Figures are medians of the repeats with [min–max]; the ratio is costguard ÷ baseline, "
        "computed per repeat (runs of one repeat are interleaved).",
        "",
        "| workload | metric | costguard | baseline | baseline figure | ratio (cg ÷ base) | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = digits_for(r.costguard)
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.workload} | {r.metric} ({r.unit}) | {_fmt(r.costguard, d)} | {r.baseline_name} | "
            f"{_fmt(r.baseline, digits_for(r.baseline) if r.baseline else d)} | {_fmt(r.ratio, 2)} | "
            f"{r.target or '—'} | {met} |"
        )
    notes = [f"- **{r.workload} / {r.metric}**: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def write(name: str, payload: dict[str, Any], md: str | None = None) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    paths = [RESULTS / f"{name}.json"]
    paths[0].write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    if md is not None:
        paths.append(RESULTS / f"{name}.md")
        paths[1].write_text(md, encoding="utf-8")
    return paths
