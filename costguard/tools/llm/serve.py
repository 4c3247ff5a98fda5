"""`costguard llm serve`: the embedded model server in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import structlog

from costguard.tools.llm.server import DEFAULT_PORT, DEFAULT_STARTUP_TIMEOUT_S, LocalModelServer
from costguard.tools.net import DEFAULT_HOST

log = structlog.get_logger(__name__)


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
        log.error("model_server.exited", code=code, log_tail=server.log_tail(1000))
        return code if code > 0 else 1
    except (KeyboardInterrupt, _Terminated) as exc:
        log.info("model_server.interrupted", signal=str(exc) or "SIGINT")
        return 0
    finally:
        server.stop()
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
