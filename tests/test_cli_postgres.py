"""`costguard postgres`: a throw-away server for trying the shared store; Ctrl-C stops and deletes it."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from costguard.tools.net import free_port, port_is_open


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_postgres_command_serves_until_interrupted_then_deletes_its_data(stop: signal.Signals) -> None:
    """Ctrl-C in a terminal, SIGTERM from a script (whose background jobs ignore SIGINT): both stop and clean up."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "costguard.run", "postgres", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not port_is_open("127.0.0.1", port):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the server never listened"
            time.sleep(0.2)
        url = f"postgresql://postgres@127.0.0.1:{port}/costguard"
        deadline = time.monotonic() + 30
        while True:  # the database is created just after the port opens
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        # the database answers a moment before the command prints how to use it: a signal then is a stop
        # during start-up (exit 0, nothing printed), so wait for the line
        told, pipe = "", proc.stderr
        assert pipe is not None
        while "export COSTGUARD_DB" not in told:
            assert proc.poll() is None, "the command ended before it said how to use it"
            assert time.monotonic() < deadline, "the command never said how to use it"
            ready, _, _ = select.select([pipe], [], [], 1.0)
            if ready:
                told = pipe.readline()
    finally:
        proc.send_signal(stop)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"export COSTGUARD_DB={url}" in told
    (data_dir,) = re.findall(r"data in (\S+)", stdout)
    assert not Path(data_dir).exists()
    assert not port_is_open("127.0.0.1", port)
