"""costguard from Python: one alert through the graph, paused for review, approved, and its history.

    python examples/python_api.py                   # checkpoints in memory
    python examples/python_api.py --sqlite run.db   # checkpoints (and ledger, audit) in a SQLite file

It runs offline. The cloud is an EC2 emulator: the moto server at AWS_ENDPOINT_URL, or, when that
is unset, one the example starts for itself (`python -m moto.server`); the example launches an
instance there to act on, so never point AWS_ENDPOINT_URL at a real account. The model is the
OpenAI-compatible server at OPENAI_BASE_URL (model COSTGUARD_MODEL, key OPENAI_API_KEY), or,
when that is unset, a scripted model that proposes a shutdown.

Everything the graph needs is passed in `context=Deps(...)`: your chat model, your boto3 session,
your stores. Nothing is global.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import boto3
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from costguard.context import Deps
from costguard.graph.builder import build_graph
from costguard.graph.checkpoint import serializer, sqlite_checkpointer
from costguard.policy import Policy
from costguard.sandbox.emulator import MotoServer
from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.state import Alert, ReviewResponse, thread_id_for
from costguard.tools.cloud import Ec2Cloud
from costguard.tools.notify import WebhookNotifier
from costguard.tools.store import Store

REVIEWER = "alice@example.com"


def chat_model(instance_id: str) -> BaseChatModel:
    """Any LangChain chat model will do; here an OpenAI-compatible server, or a scripted one."""
    if base_url := os.environ.get("OPENAI_BASE_URL"):
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=os.environ.get("COSTGUARD_MODEL", "smollm2-135m-instruct"),
            base_url=base_url,
            api_key=os.environ.get("OPENAI_API_KEY", "not-needed"),
            temperature=0,
        )
    answer = {
        "action": "shutdown",
        "confidence": 0.9,
        "reasoning": "idle for two weeks",
        "parameters": {"instance_id": instance_id},
        "requires_approval": False,
    }
    return ScriptedChatModel(script=[answer])


def launch_demo_instance(session: boto3.Session, endpoint: str) -> str:
    """One m5.xlarge in the emulator for the alert to be about."""
    ec2 = session.client("ec2", endpoint_url=endpoint)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reply = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="m5.xlarge",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "env", "Value": "dev"}]}],
    )
    return reply["Instances"][0]["InstanceId"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sqlite", type=Path, help="keep checkpoints in this SQLite file (default: in memory)")
    args = parser.parse_args()

    with ExitStack() as stack:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or stack.enter_context(MotoServer()).url
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        session = boto3.Session(  # your session: any credentials do for the emulator
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            region_name=region,
        )
        instance_id = launch_demo_instance(session, endpoint)
        print(f"instance: {instance_id} (m5.xlarge) in the emulator at {endpoint}")

        # 1. the graph, compiled with the checkpointer of your choice
        db = args.sqlite or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "costguard.db"
        checkpointer: BaseCheckpointSaver[str] = (
            sqlite_checkpointer(db) if args.sqlite else InMemorySaver(serde=serializer())
        )
        graph = build_graph().compile(checkpointer=checkpointer, name="costguard")

        # 2. the dependencies, injected per run
        deps = Deps(
            model=chat_model(instance_id),
            cloud=Ec2Cloud(session, default_region=region, endpoint_url=endpoint),
            store=Store(db),  # execution ledger and audit trail
            notifier=WebhookNotifier(None, db.with_name(db.stem + "-alerts.jsonl")),  # critical errors
            policy=Policy(phase="reversible", approvers=(REVIEWER,)),  # every action needs a person
        )

        # 3. one alert, one thread: the run stops at the review
        alert = Alert(alert_id="example-1", instance_id=instance_id, monthly_cost_usd=140, summary="idle for 14 days")
        config: RunnableConfig = {"configurable": {"thread_id": thread_id_for(alert.alert_id)}}
        graph.invoke({"alert": alert}, config, context=deps)
        paused = graph.get_state(config)
        action = paused.interrupts[0].value["action_requests"][0]
        digest = paused.values["plan"].digest  # the pending plan's, kept in the state (not in the request)
        print(f"review requested: {action['description']}")
        print(f"digest: {digest}")

        # 4. the answer: bound to the plan's digest, checked by the graph itself
        answer = ReviewResponse(decision="approve", reviewer=REVIEWER, digest=digest)
        final = graph.invoke(Command(resume=answer.model_dump(mode="json")), config, context=deps)
        outcome = final["outcome"]
        print(f"outcome: {outcome.status}: {outcome.reason}")

        # 5. the thread's checkpoints, newest first
        print("history:")
        for snap in graph.get_state_history(config, limit=20):
            step = snap.metadata.get("step") if snap.metadata else None
            print(f"  step {step}: next {list(snap.next)}")


if __name__ == "__main__":
    main()
