"""A fake OpenAI-compatible server on 127.0.0.1: `/v1/models` and a scripted `/v1/chat/completions`.

For tests of what costguard does when a model server misbehaves; it never runs a model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Reply = tuple[int, bytes]


def ok_text(body: dict[str, Any]) -> Reply:
    """A well-formed chat completion answering `OK`."""
    message = {"role": "assistant", "content": "OK"}
    completion = {
        "id": "fake",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "m"),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return 200, json.dumps(completion).encode()


class FakeOpenAI:
    """`with FakeOpenAI(completion=fn) as fake:` serves until the block ends; `fake.requests` counts calls."""

    def __init__(self, completion: Callable[[dict[str, Any]], Reply] = ok_text, model: str = "m") -> None:
        self.completion = completion
        self.model = model
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._reply(200, json.dumps({"data": [{"id": fake.model, "object": "model"}]}).encode())
                else:
                    self._reply(404, b"{}")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                fake.requests.append(body)
                self._reply(*fake.completion(body))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
