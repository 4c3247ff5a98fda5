"""The graph as `langgraph dev` serves it (driven with langgraph-sdk), and the Python API example.

One server for the module: `langgraph dev` in a temporary directory (its `.langgraph_api/` state
lands there, not in the repository), with the repository's own `langgraph.json`, moto for the
cloud, a scripted model, and a policy that sends every action to review.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from uuid import NAMESPACE_URL, uuid5

import httpx
import pytest
from langgraph.graph import END, START
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from costguard.api.graph import INTAKE, SCRIPTED_MODEL_ENV, served_deps, served_graph
from costguard.context import Deps
from costguard.errors import ConfigError
from costguard.policy import Policy
from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.state import Plan
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.net import free_port
from costguard.tools.notify import WebhookNotifier
from costguard.tools.store import Store
from tests.conftest import APPROVER, REGION, decision, launch, snapshots_of, state_of
from tests.test_cli import costguard

ROOT = Path(__file__).resolve().parents[1]
GRAPH = "costguard"
STARTUP_TIMEOUT_S = 60.0


def _langgraph_cli() -> Path:
    cli = Path(sys.executable).with_name("langgraph")
    if not cli.exists():
        pytest.skip("langgraph-cli[inmem] is not installed in this environment")
    return cli


def _wait_for_ok(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"langgraph dev did not answer /ok within {STARTUP_TIMEOUT_S:.0f}s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """The whole process group: the CLI and the server it runs."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@dataclass(frozen=True)
class Served:
    url: str
    db: Path  # COSTGUARD_DB: the ledger and the audit trail (the checkpoints are the server's)


@pytest.fixture(scope="module")
def server(moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`langgraph dev` on a free loopback port. Stopped (the whole process group) at teardown."""
    cli = _langgraph_cli()
    work = tmp_path_factory.mktemp("studio")
    shutil.copy(ROOT / "langgraph.json", work / "langgraph.json")
    answers = work / "answers.json"
    answers.write_text(json.dumps([decision("{{instance_id}}")]), encoding="utf-8")
    policy = work / "policy.toml"
    policy.write_text(f'phase = "reversible"\napprovers = ["{APPROVER}"]\n', encoding="utf-8")
    env = dict(os.environ)
    env.update(
        {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # nothing listens: a real model call would fail
            SCRIPTED_MODEL_ENV: str(answers),
            "COSTGUARD_DB": str(work / "costguard.db"),
            "COSTGUARD_POLICY": str(policy),
            "COSTGUARD_REVIEWERS": str(ROOT / "examples" / "reviewers.toml"),
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            "LANGGRAPH_NO_VERSION_CHECK": "true",
            "LANGSMITH_TRACING": "false",
        }
    )
    port = free_port()
    log = work / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(cli), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_ok(url, proc, log)
        yield Served(url, work / "costguard.db")
    finally:
        _stop(proc)


KEYS = {"submitter": "sam-demo-key", "reviewer": "alice-demo-key", "viewer": "vera-demo-key", "other": "bob-demo-key"}


@pytest.fixture
def client(server: Served) -> SyncLangGraphClient:
    """The submitter: creates threads and starts runs."""
    return get_sync_client(url=server.url, api_key=KEYS["submitter"])


def as_(server: Served, who: str) -> SyncLangGraphClient:
    return get_sync_client(url=server.url, api_key=KEYS[who])


def _values(result: list[dict[str, Any]] | dict[str, Any]) -> dict[str, Any]:
    assert isinstance(result, dict), result
    return result


def _paused(client: SyncLangGraphClient, alert_id: str, iid: str) -> tuple[str, Plan]:
    thread_id = str(uuid5(NAMESPACE_URL, f"alert:{alert_id}"))
    assert client.threads.create(thread_id=thread_id, if_exists="do_nothing")["thread_id"] == thread_id
    alert: dict[str, Any] = {"alert_id": alert_id, "instance_id": iid, "monthly_cost_usd": 140, "summary": "idle"}
    first = _values(client.runs.wait(thread_id, GRAPH, input={"alert": alert}))
    assert "__interrupt__" in first
    assert client.threads.get(thread_id)["status"] == "interrupted"
    state = client.threads.get_state(thread_id)
    return thread_id, Plan.model_validate(cast(dict[str, Any], state["values"])["plan"])  # the digest is recomputed


def _refused_with(reviewer: SyncLangGraphClient, thread_id: str, answer: dict[str, Any]) -> list[str]:
    values = _values(reviewer.runs.wait(thread_id, GRAPH, command={"resume": answer}))
    assert "__interrupt__" in values
    return list(values["review"]["rules"])


def test_served_graph_reviews_by_authenticated_people_only(
    client: SyncLangGraphClient, server: Served, ec2: Any
) -> None:
    # no key, a wrong key: 401 before anything is read
    for key in (None, "not-a-key"):
        headers = {"X-Api-Key": key} if key else {}
        assert httpx.post(f"{server.url}/threads/search", json={}, headers=headers, timeout=10).status_code == 401
    iid = launch(ec2, "m5.xlarge", {"env": "dev"})
    thread_id, plan = _paused(client, "studio-1", iid)
    state = client.threads.get_state(thread_id)
    (interrupt,) = state["interrupts"]
    request = cast(dict[str, Any], interrupt["value"])
    assert request["review_configs"] == [
        {"action_name": "execute_plan", "allowed_decisions": ["approve", "edit", "reject"]}
    ]
    (action,) = request["action_requests"]
    assert action["args"] == {"action": "shutdown", "target_instance_type": ""}
    assert plan.resource_id == iid
    assert plan.thread_id == thread_id
    assert f"Stop `{iid}`" in action["description"]
    # the thread reads as a conversation
    told = [m["content"] for m in cast(dict[str, Any], state["values"])["messages"]]
    assert told[0].startswith("Cost alert studio-1")
    assert "a person must approve" in told[-1]

    # a viewer and the submitter may read but not answer; "Mark as resolved" is not an answer
    for who in ("viewer", "submitter"):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            as_(server, who).runs.wait(thread_id, GRAPH, command={"resume": {"decisions": [{"type": "approve"}]}})
        assert refused.value.response.status_code == 403
    with pytest.raises(httpx.HTTPStatusError) as resolved:
        as_(server, "reviewer").runs.wait(thread_id, GRAPH, command={"goto": "__end__"})
    assert resolved.value.response.status_code == 400
    assert "reject it" in resolved.value.response.text

    alice, bob = as_(server, "reviewer"), as_(server, "other")
    # a reviewer who is not on the policy's approvers; a forged reviewer name; a wrong digest: refused, audited
    assert _refused_with(bob, thread_id, {"decisions": [{"type": "approve"}]}) == ["reviewer_not_allowed"]
    forged = {"decision": "approve", "reviewer": "alice@example.com", "digest": plan.digest}
    assert _refused_with(bob, thread_id, forged) == ["reviewer_mismatch"]
    wrong = {"decision": "approve", "reviewer": "alice@example.com", "digest": "0" * 64}
    assert _refused_with(alice, thread_id, wrong) == ["digest_mismatch"]
    again = client.threads.get_state(thread_id)["interrupts"][0]["value"]["action_requests"][0]["description"]
    assert "**Your last answer was refused:**" in again
    assert state_of(ec2, iid) == "running"
    assert snapshots_of(ec2, iid) == []

    # alice approves from a front end: her identity, the pending plan's digest
    done = _values(alice.runs.wait(thread_id, GRAPH, command={"resume": {"decisions": [{"type": "approve"}]}}))
    outcome = done["outcome"]
    assert outcome["status"] == "executed"
    assert outcome["digest"] == plan.digest
    assert state_of(ec2, iid) == "stopped"
    assert outcome["snapshot_ids"] == snapshots_of(ec2, iid)
    records = Store(server.db).audit_rows(thread_id)
    assert [(r.event, r.result) for r in records][:4] == [("review_refused", "refused")] * 3 + [
        ("review_approved", "approved")
    ]
    assert {r.authorized_by for r in records if r.event in ("review_approved", "shutdown")} == {"alice@example.com"}
    assert [r.actor for r in records if r.event == "review_refused"][:2] == ["reviewer:bob@example.com"] * 2
    history = client.threads.get_history(thread_id, limit=50)
    assert [list(h["next"]) for h in history][:3] == [[], ["report"], ["execute"]]
    assert client.threads.get(thread_id)["status"] == "idle"


def test_served_graph_edits_are_rechecked_and_rejections_keep_their_message(
    client: SyncLangGraphClient, server: Served, ec2: Any
) -> None:
    alice = as_(server, "reviewer")
    iid = launch(ec2, "m5.xlarge", {"env": "dev"})
    thread_id, _ = _paused(client, "studio-edit", iid)
    dearer = {"name": "execute_plan", "args": {"action": "resize", "target_instance_type": "m5.4xlarge"}}
    edited = _values(
        alice.runs.wait(
            thread_id, GRAPH, command={"resume": {"decisions": [{"type": "edit", "edited_action": dearer}]}}
        )
    )
    # the rails refuse the edit; the plan as proposed still waits, and the request says why
    assert "__interrupt__" in edited
    assert "resize_not_cheaper" in edited["review"]["rules"]
    # a chat message is not an answer, nor a new alert: refused before it reaches the graph
    chat: dict[str, Any] = {"messages": [{"type": "human", "content": "is this safe?"}]}
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.runs.wait(thread_id, GRAPH, input=chat)
    assert refused.value.response.status_code == 400

    other = launch(ec2, "m5.xlarge", {"env": "dev"})
    thread_id, _ = _paused(client, "studio-reject", other)
    no = {"decisions": [{"type": "reject", "message": "payroll runs on it"}]}
    rejected = _values(alice.runs.wait(thread_id, GRAPH, command={"resume": no}))
    assert rejected["outcome"]["status"] == "review_rejected"
    assert rejected["outcome"]["reason"] == "rejected by alice@example.com (payroll runs on it)"
    assert state_of(ec2, iid) == state_of(ec2, other) == "running"


def test_the_server_starts_with_every_path_protected_and_no_unregistered_types(server: Served) -> None:
    log = (server.db.parent / "server.log").read_text(errors="replace")
    assert "missing_paths" not in log
    assert "unregistered type" not in log.lower()


def test_served_graph_ends_an_invalid_alert_with_invalid_input(client: SyncLangGraphClient) -> None:
    thread_id = client.threads.create()["thread_id"]
    bad = {"alert_id": "studio-bad", "instance_id": "not-an-instance"}
    values = _values(client.runs.wait(thread_id, GRAPH, input={"alert": bad}))
    outcome = values["outcome"]
    assert outcome["status"] == "invalid_input"
    assert outcome["alert_id"] == "studio-bad"
    assert outcome["reason"].startswith("instance_id: String should match pattern")
    assert "facts" not in values  # never reached the cloud


def test_served_graph_publishes_the_alert_input_schema(client: SyncLangGraphClient) -> None:
    (assistant,) = client.assistants.search(graph_id=GRAPH)
    schemas = client.assistants.get_schemas(assistant["assistant_id"])
    input_schema = schemas["input_schema"]
    assert input_schema is not None
    assert input_schema["required"] == ["alert"]
    assert "instance_id" in json.dumps(input_schema)


# --- the served graph without a server ------------------------------------------------------


def test_served_graph_has_no_checkpointer_no_context_schema_and_an_intake_step(tmp_path: Path, cloud: Ec2Cloud) -> None:
    deps = Deps(
        model=ScriptedChatModel(script=[]),
        cloud=cloud,
        store=Store(tmp_path / "costguard.db"),
        notifier=WebhookNotifier(None, tmp_path / "alerts.jsonl"),
        policy=Policy(phase="reversible", approvers=(APPROVER,)),
    )
    graph = served_graph(deps)
    assert graph.checkpointer is None  # the server supplies its own
    assert graph.context_schema is None  # the deps are bound; a request's context cannot build them
    assert (START, INTAKE) in graph.builder.edges
    assert (START, "gather") not in graph.builder.edges
    drawn = {(e.source, e.target) for e in graph.get_graph().edges}  # what Studio draws
    assert {(START, INTAKE), (INTAKE, "gather"), (INTAKE, END)} <= drawn
    result = graph.invoke({"alert": {"alert_id": "x"}}, {"configurable": {"thread_id": "t-1"}})  # type: ignore[call-overload]
    assert result["outcome"].status == "invalid_input"
    assert (
        result["outcome"].reason == "alert: Value error, the alert names no resource: give resource_id (or instance_id)"
    )
    assert result["outcome"].thread_id == "t-1"


def test_served_deps_read_the_scripted_model_and_policy_from_the_environment(
    tmp_path: Path, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([decision("{{instance_id}}", action="monitor")]), encoding="utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text('phase = "autonomous"\n', encoding="utf-8")
    monkeypatch.setenv("COSTGUARD_DB", str(tmp_path / "costguard.db"))
    monkeypatch.setenv("COSTGUARD_POLICY", str(policy))
    deps = served_deps(environ={SCRIPTED_MODEL_ENV: str(answers)})
    assert isinstance(deps.model, ScriptedChatModel)
    assert deps.model.cycle
    assert deps.policy.phase == "autonomous"
    assert deps.store.path == str(tmp_path / "costguard.db")

    answers.write_text("[]", encoding="utf-8")
    with pytest.raises(ConfigError, match="non-empty JSON list"):
        served_deps(environ={SCRIPTED_MODEL_ENV: str(answers)})
    with pytest.raises(ConfigError, match="cannot read scripted model"):
        served_deps(environ={SCRIPTED_MODEL_ENV: str(tmp_path / "missing.json")})


# --- the Python API example ---------------------------------------------------------------------


@pytest.mark.parametrize("saver", ["memory", "sqlite"])
def test_python_api_example_runs_as_documented(saver: str, tmp_path: Path, aws_env: str, ec2: Any) -> None:
    env = dict(os.environ)
    env.pop("OPENAI_BASE_URL", None)  # the example then uses its scripted model
    args = [sys.executable, str(ROOT / "examples" / "python_api.py")]
    if saver == "sqlite":
        args += ["--sqlite", str(tmp_path / "example.db")]
    proc = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stdout
    found = re.search(r"^instance: (i-[0-9a-f]{17}) \(m5\.xlarge\) in the emulator at (\S+)$", out, re.MULTILINE)
    assert found, out
    iid = found.group(1)
    assert found.group(2) == aws_env
    digest = re.search(r"^digest: ([0-9a-f]{64})$", out, re.MULTILINE)
    assert digest, out
    assert f"review requested: Stop `{iid}` (m5.xlarge, us-east-1): saves **$140.16/month**." in out
    assert re.search(rf"^outcome: executed: {iid} stopped after snapshot\(s\) snap-", out, re.MULTILINE), out
    history = re.findall(r"^  step (-?\d+): next (.*)$", out, re.MULTILINE)
    assert history[0] == ("7", "[]")
    assert ("4", "['human_review']") in history
    assert history[-1] == ("-1", "['__start__']")
    assert state_of(ec2, iid) == "stopped"
    assert len(snapshots_of(ec2, iid)) == 1
    if saver == "sqlite":
        assert (tmp_path / "example.db").stat().st_size > 0


def test_the_cli_reviews_the_servers_queue(client: SyncLangGraphClient, server: Served, ec2: Any) -> None:
    iid = launch(ec2, "m5.xlarge", {"env": "dev"})
    thread_id, plan = _paused(client, "studio-cli", iid)
    env = {**os.environ, "COSTGUARD_SERVER": server.url, "COSTGUARD_API_KEY": KEYS["reviewer"]}
    listed = costguard("review", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    (waiting,) = [p for p in json.loads(listed.stdout) if p["thread_id"] == thread_id]
    assert (waiting["digest"], waiting["instance_id"], waiting["action"]) == (plan.digest, iid, "shutdown")
    shown = costguard("review", "show", "alert:studio-cli", env=env)  # costguard's thread id maps to the server's
    assert f"Stop `{iid}`" in shown.stdout
    forged = costguard(
        "review",
        "approve",
        thread_id,
        "--reviewer",
        "bob@example.com",
        "--digest",
        plan.digest,
        "--json",
        env=env,
        check=False,
    )
    assert forged.returncode == 1
    assert json.loads(forged.stdout)["refused"] == "the answer names 'bob@example.com', but 'alice@example.com' sent it"
    done = costguard(
        "review", "approve", thread_id, "--reviewer", "alice@example.com", "--digest", plan.digest, "--json", env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "executed"
    history = costguard("history", thread_id, "--json", env=env)
    assert json.loads(history.stdout)[0]["next"] == []
    assert state_of(ec2, iid) == "stopped"
