"""A fault-injecting HTTP proxy on 127.0.0.1 in front of moto: throttling, 5xx and permission errors.

Faults come from a seeded RNG, so a run is repeatable. A fault is injected either before the
request reaches the emulator ("before": nothing happened) or after it ("after": the effect
happened but the client sees an error, the case that tempts a retry to act twice).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx

THROTTLE = (400, "RequestLimitExceeded", "Request limit exceeded.")
UNAVAILABLE = (503, "Unavailable", "The service is unavailable.")
DENIED = (403, "UnauthorizedOperation", "You are not authorized to perform this operation.")


def _error_body(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{code}</Code>'
        f"<Message>{message}</Message></Error></Errors><RequestID>fault</RequestID></Response>"
    ).encode()


@dataclass
class FaultPlan:
    rate: float = 0.0  # share of matching requests that fail
    actions: frozenset[str] | None = None  # EC2/CloudWatch Action names; None: all
    kinds: tuple[tuple[int, str, str], ...] = (THROTTLE, UNAVAILABLE)
    after_rate: float = 0.0  # share of mutating calls answered with a 503 after they reached moto
    deny: frozenset[str] = frozenset()  # actions always refused for lack of permission
    seed: int = 7
    seen: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)


MUTATING = frozenset({"CreateSnapshot", "StopInstances", "StartInstances", "ModifyInstanceAttribute"})


class FaultProxy:
    def __init__(self, upstream: str, plan: FaultPlan) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                return None

            def do_POST(self) -> None:
                proxy.handle(self)

            def do_GET(self) -> None:
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _roll(self, rate: float) -> bool:
        with self._lock:
            return self._rng.random() < rate

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        target = request.headers.get("X-Amz-Target", "")
        name = action or target.rsplit(".", 1)[-1] or request.path
        plan = self.plan
        with self._lock:
            plan.seen[name] += 1
        # only EC2's query-protocol calls get faults (their error shape is the XML above)
        matches = bool(action) and (plan.actions is None or name in plan.actions)
        if name in plan.deny:
            self._reply_error(request, DENIED, name)
            return
        if matches and self._roll(plan.rate):
            with self._lock:
                kind = self._rng.choice(plan.kinds)
            self._reply_error(request, kind, name)
            return
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        reply = httpx.request(request.command, self.upstream + request.path, content=body, headers=headers, timeout=30)
        if name in MUTATING and self._roll(plan.after_rate):
            self._reply_error(request, UNAVAILABLE, name + ":after")
            return
        request.send_response(reply.status_code)
        for key, value in reply.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(reply.content)))
        request.end_headers()
        request.wfile.write(reply.content)

    def _reply_error(self, request: BaseHTTPRequestHandler, kind: tuple[int, str, str], name: str) -> None:
        status, code, message = kind
        with self._lock:
            self.plan.injected[f"{name}:{code}"] += 1
        payload = _error_body(code, message)
        request.send_response(status)
        request.send_header("Content-Type", "text/xml")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)
