"""Small statistics: medians and spreads of repeated runs, percentiles, Wilson intervals."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stat:
    """A figure measured several times: its median and spread (min..max), plus the raw values."""

    median: float
    low: float
    high: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            raise ValueError("no values")
        vals = tuple(float(v) for v in values)
        return cls(statistics.median(vals), min(vals), max(vals), vals)

    @property
    def spread_pct(self) -> float:
        """(max - min) / median, in percent: how noisy the repeats were."""
        return 0.0 if self.median == 0 else 100.0 * (self.high - self.low) / abs(self.median)

    def fmt(self, digits: int = 2) -> str:
        if len(self.values) == 1:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}–{self.high:.{digits}f}]"

    def json(self, digits: int = 4) -> dict[str, Any]:
        return {
            "median": round(self.median, digits),
            "min": round(self.low, digits),
            "max": round(self.high, digits),
            "spread_pct": round(self.spread_pct, 1),
            "values": [round(v, digits) for v in self.values],
        }


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Stat:
    """Per-repetition ratios (runs of the same repetition were interleaved, so they share the noise)."""
    return Stat.of([n / d for n, d in zip(numerators, denominators, strict=True) if d > 0])


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
