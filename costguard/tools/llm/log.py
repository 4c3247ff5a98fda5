"""The model server's log file: where its output goes (never the terminal), and what is read back from it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO

LOG_TAIL_CHARS = 3000
BACKEND_LINE = "costguard: llama.cpp CPU backend:"  # what the launcher writes to the log


class ServerLog:
    """The requested file, or a temporary one removed at `close()`."""

    def __init__(self, requested: Path | None) -> None:
        self._requested = requested
        self.path: Path | None = None
        self._own_dir: Path | None = None
        self._handle: IO[bytes] | None = None

    def open(self) -> tuple[Path, IO[bytes]]:
        """The path, and a handle for the child's stdout and stderr (appended to)."""
        if self._requested is not None:
            path = self._requested
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self._own_dir = Path(tempfile.mkdtemp(prefix="costguard-llm-"))
            path = self._own_dir / "llama_server.log"
        self.path = path
        self._handle = path.open("ab")
        return path, self._handle

    def tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The last `chars` characters, for error messages."""
        if self.path is None:
            return "(no log)"
        try:
            with self.path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - chars))
                text = handle.read().decode("utf-8", errors="replace")
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return text.strip() or "(log empty)"

    def backend_line(self) -> str:
        """The CPU backend the launcher loaded, as it said in the log."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                    if line.startswith(BACKEND_LINE):
                        return line.removeprefix("costguard: ")
        return "llama.cpp CPU backend: unknown (not in the log)"

    def close(self) -> None:
        """Close the handle; remove the file when it was a temporary one."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._own_dir is not None:
            with contextlib.suppress(OSError):
                if self.path is not None:
                    self.path.unlink(missing_ok=True)
                self._own_dir.rmdir()
            self._own_dir = None
