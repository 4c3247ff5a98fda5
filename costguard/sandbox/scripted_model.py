"""A scripted chat model: deterministic answers, no network. For tests, demos and benchmarks.

Each call takes the next entry of the script (or asks a rule function): a dict becomes a tool
call carrying that dict (what a forced-tool server returns), a str becomes plain text (garbage
for the parser), an exception is raised (a model-server failure). In a dict, the string
`{{instance_id}}` is replaced by the first instance id of the prompt's data (the alert's own),
so one scripted answer fits every alert of a batch, in any order. For a batch of mixed kinds, the
string `{{action}}` becomes the kind's natural action (shutdown, delete, release) and `{{parameters}}`
the parameters naming the alert's resource as its kind's schema has them.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, PrivateAttr

from costguard.errors import ConfigError

Answer = dict[str, Any] | str | BaseException
PLACEHOLDER = "{{instance_id}}"
_INSTANCE_ID = re.compile(r'"instance_id":\s*"(i-[0-9a-f]+)"')
_RESOURCE = re.compile(r'"resource_id":\s*"([^"]+)",\s*"resource_type":\s*"([a-z_]+)"')
NATURAL_ACTION = {"instance": "shutdown", "volume": "delete", "address": "release", "db_instance": "shutdown"}


def _fill(answer: dict[str, Any], messages: Sequence[BaseMessage]) -> dict[str, Any]:
    text = json.dumps(answer)
    prompt = str(messages[-1].content) if messages else ""
    if "{{action}}" in text or "{{parameters}}" in text:
        found_resource = _RESOURCE.search(prompt)
        rid, kind = found_resource.groups() if found_resource else ("i-00000000", "instance")
        params = {"instance_id": rid, "target_instance_type": None} if kind == "instance" else {"resource_id": rid}
        text = text.replace('"{{action}}"', json.dumps(NATURAL_ACTION.get(kind, "monitor")))
        text = text.replace('"{{parameters}}"', json.dumps(params))
    if PLACEHOLDER not in text:
        return dict(json.loads(text))
    found = _INSTANCE_ID.search(prompt)
    filled: dict[str, Any] = json.loads(text.replace(PLACEHOLDER, found.group(1) if found else "i-00000000"))
    return filled


Rule = Callable[[Sequence[BaseMessage]], Answer]


class ScriptedChatModel(BaseChatModel):
    """Answers from a script or a rule; records every prompt it was given."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Sequence[Answer] = ()
    rule: Rule | None = None
    cycle: bool = False
    latency_s: float = 0.0
    tool_name: str = "decision"
    _answers: Iterator[Answer] | None = PrivateAttr(default=None)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        return self._calls

    def _next(self, messages: Sequence[BaseMessage]) -> Answer:
        if self.rule is not None:
            return self.rule(messages)
        if self._answers is None:
            self._answers = itertools.cycle(self.script) if self.cycle else iter(self.script)
        try:
            return next(self._answers)
        except StopIteration:
            raise AssertionError("the scripted model ran out of answers") from None

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._calls.append(list(messages))
        if self.latency_s:
            time.sleep(self.latency_s)
        answer = self._next(messages)
        if isinstance(answer, BaseException):
            raise answer
        prompt_tokens = sum(len(str(m.content).split()) for m in messages)
        if isinstance(answer, dict):
            answer = _fill(answer, messages)
            message = AIMessage(
                content="",
                tool_calls=[{"name": self.tool_name, "args": answer, "id": f"call_{len(self._calls)}"}],
            )
            completion = len(str(answer).split())
        else:
            message = AIMessage(content=answer)
            completion = len(answer.split())
        message.usage_metadata = {
            "input_tokens": prompt_tokens,
            "output_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        }
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        name = convert_to_openai_tool(tools[0])["function"]["name"] if tools else self.tool_name
        bound = self.model_copy(update={"tool_name": name})
        bound._answers = self._answers
        bound._calls = self._calls  # share the record with the original
        if self._answers is None and self.rule is None:
            self._answers = itertools.cycle(self.script) if self.cycle else iter(self.script)
            bound._answers = self._answers
        return bound


RAISABLE: dict[str, type[Exception]] = {"TimeoutError": TimeoutError, "ConnectionError": ConnectionError}


def load_script(path: Path) -> ScriptedChatModel:
    """A scripted model from a JSON list file (the CLI's `--scripted-model`, the served graph's variable).

    Each item is a decision (`"{{instance_id}}"` is replaced by the alert's), a text, or
    `{"raise": "TimeoutError" | "ConnectionError"}` for a failing call; the list is cycled.
    """
    try:
        script = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read scripted model {path}: {exc}") from exc
    if not isinstance(script, list) or not script:
        raise ConfigError(f"scripted model {path} must be a non-empty JSON list")
    answers: list[Answer] = [
        RAISABLE[item["raise"]]("scripted failure")
        if isinstance(item, dict) and item.get("raise") in RAISABLE
        else item
        for item in script
    ]
    return ScriptedChatModel(script=answers, cycle=True)
