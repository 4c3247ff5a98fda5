"""Write the preset dictionary that checkpoint compression uses (`costguard/data/checkpoint-*.zdict`).

`python -m bench.zdict` runs a small mixed fleet through costguard (fake cloud, scripted model),
keeps the serialized checkpoints, and writes a few of them, one per kind of end (executed,
waiting for review, monitoring), as the dictionary. Its file name carries the first 12 hex digits
of its SHA-256, which is also the encoding name stored with each row: a dictionary, once shipped,
never changes (rows written with it must stay readable); a new one is added next to it.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import tempfile
from pathlib import Path

from bench.fakes import FakeCloud
from bench.harness import RuleModel, build_costguard, cli_logging, close
from bench.workloads import mixed_fleet
from costguard.graph import checkpoint
from costguard.sandbox.scripted_model import ScriptedChatModel

DATA = Path(checkpoint.__file__).resolve().parent.parent / "data"
MAX_BYTES = 30_000  # within zlib's 32 KB window


def sample_checkpoints() -> list[bytes]:
    captured: list[bytes] = []
    real = checkpoint.Zlib.encrypt

    def capture(self: checkpoint.Zlib, plaintext: bytes) -> tuple[str, bytes]:
        captured.append(plaintext)
        return real(self, plaintext)

    checkpoint.Zlib.encrypt = capture  # type: ignore[method-assign]
    try:
        fleet = mixed_fleet(30, 20261125, "z")
        with tempfile.TemporaryDirectory() as d:
            cloud = FakeCloud.of(m.instance for m in fleet)
            built = build_costguard(Path(d) / "z.db", cloud, ScriptedChatModel(rule=RuleModel(fleet)))
            list(built.guard.process([m.alert for m in fleet]))
            close(built)
    finally:
        checkpoint.Zlib.encrypt = real  # type: ignore[method-assign]
    return [blob for blob in captured if len(blob) > 1000]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA)
    args = parser.parse_args()
    cli_logging(logging.WARNING)
    blobs = sample_checkpoints()
    # the last lines of the dictionary weigh most (closest in the window): the biggest (final) state last
    chosen = sorted({len(b) // 200: b for b in blobs}.values(), key=len)[-4:]
    zdict = b"".join(chosen)[-MAX_BYTES:]
    name = hashlib.sha256(zdict).hexdigest()[:12]
    path = args.out / f"checkpoint-{name}.zdict"
    path.write_bytes(zdict)
    print(f"wrote {path} ({len(zdict)} bytes, from {len(blobs)} checkpoints)")


if __name__ == "__main__":
    main()
