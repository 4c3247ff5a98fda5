"""moto's EC2/CloudWatch server on 127.0.0.1: the local cloud endpoint of the demo and the tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from costguard.errors import EmulatorError
from costguard.tools.net import free_port


def is_up(url: str) -> bool:
    try:
        return httpx.get(f"{url.rstrip('/')}/moto-api/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class MotoServer:
    """Starts `python -m moto.server` on a free loopback port; stops it on exit."""

    def __init__(self, *, port: int | None = None, log_file: Path | None = None, timeout_s: float = 30.0) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_file = log_file
        self._timeout_s = timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        log = self._log_file.open("ab") if self._log_file else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self._timeout_s
        while not is_up(self.url):
            if self._proc.poll() is not None:
                raise EmulatorError(f"moto server exited with {self._proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(f"moto server did not answer on {self.url} within {self._timeout_s:.0f}s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
