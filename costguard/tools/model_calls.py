"""A LangChain callback that records every model call: latency, tokens, errors.

Attach it to the chat model (`callbacks=[recorder]`); it sees each request the graph makes,
including retried ones, without the nodes knowing about it.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult


@dataclass(frozen=True)
class ModelCall:
    latency_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None = None


class ModelCallRecorder(BaseCallbackHandler):
    """Thread-safe: concurrent alerts share one recorder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[UUID, float] = {}
        self.calls: list[ModelCall] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        with self._lock:
            self._started[run_id] = time.perf_counter()

    def _finish(self, run_id: UUID) -> float:
        with self._lock:
            started = self._started.pop(run_id, None)
        return 0.0 if started is None else time.perf_counter() - started

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        latency = self._finish(run_id)
        prompt = completion = None
        generation = response.generations[0][0] if response.generations and response.generations[0] else None
        if isinstance(generation, ChatGeneration) and isinstance(generation.message, AIMessage):
            usage = generation.message.usage_metadata
            if usage:
                prompt, completion = usage["input_tokens"], usage["output_tokens"]
        with self._lock:
            self.calls.append(ModelCall(latency, prompt, completion))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        latency = self._finish(run_id)
        with self._lock:
            self.calls.append(ModelCall(latency, None, None, error=type(error).__name__))

    def summary(self) -> dict[str, Any]:
        with self._lock:
            calls = list(self.calls)
        ok = [c for c in calls if c.error is None]
        latencies = sorted(c.latency_s for c in ok)
        return {
            "calls": len(calls),
            "errors": len(calls) - len(ok),
            "error_classes": sorted({c.error for c in calls if c.error}),
            "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "latency_max_s": round(latencies[-1], 3) if latencies else None,
            "prompt_tokens": sum(c.prompt_tokens or 0 for c in ok),
            "completion_tokens": sum(c.completion_tokens or 0 for c in ok),
        }
