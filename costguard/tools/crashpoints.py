"""Fault injection for crash tests: SIGKILL this process at named points, with a probability.

Off unless `COSTGUARD_CRASHPOINTS` is set, e.g. `after_intent=0.05,after_effect=0.05`. The kill
is real (`kill -9` on ourselves), so what survives is exactly what survives a power cut.
"""

from __future__ import annotations

import os
import random
import signal
from functools import cache

ENV = "COSTGUARD_CRASHPOINTS"


@cache
def _parse(spec: str) -> dict[str, float]:
    points: dict[str, float] = {}
    for part in spec.split(","):
        name, _, prob = part.partition("=")
        if name.strip():
            points[name.strip()] = float(prob or 1.0)
    return points


def crashpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    probability = _parse(spec).get(name, 0.0)
    if probability and random.random() < probability:
        os.kill(os.getpid(), signal.SIGKILL)
