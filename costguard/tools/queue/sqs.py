"""Amazon SQS through boto3: long polling, delete after the work is durable, visibility extended while it runs.

Delivery is at least once: the same message may come twice, or again after its visibility timeout. The watcher
makes that harmless (thread ids derive from the message's source id); this module only moves messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import boto3
import botocore.config

from costguard.tools.cloud.errors import mapped_errors

MAX_BATCH = 10  # SQS's own limit per ReceiveMessage
MAX_WAIT_S = 20  # SQS's longest long poll


@dataclass(frozen=True)
class Message:
    """One delivery of a message: its id, the handle that deletes or extends this delivery, its body."""

    message_id: str
    receipt: str
    body: str
    receive_count: int


class Queue(Protocol):
    def receive(self, *, max_messages: int, wait_s: int, visibility_s: int) -> list[Message]: ...

    def delete(self, message: Message) -> None: ...

    def extend(self, message: Message, visibility_s: int) -> None: ...


class SqsQueue:
    """One SQS queue by URL; the session and endpoint are injected (moto's server in tests and the demo)."""

    def __init__(
        self,
        url: str,
        *,
        session: boto3.Session | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.url = url
        session = session or boto3.Session()
        config = botocore.config.Config(
            retries={"total_max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=MAX_WAIT_S + 10,  # a long poll holds the connection for up to 20 s
        )
        kwargs: dict[str, Any] = {"config": config, "region_name": region or session.region_name or "us-east-1"}
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        self._sqs: Any = session.client("sqs", **kwargs)

    def receive(
        self, *, max_messages: int = MAX_BATCH, wait_s: int = MAX_WAIT_S, visibility_s: int = 60
    ) -> list[Message]:
        with mapped_errors(f"receive_message {self.url}"):
            reply = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max(1, min(max_messages, MAX_BATCH)),
                WaitTimeSeconds=max(0, min(wait_s, MAX_WAIT_S)),
                VisibilityTimeout=visibility_s,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        return [
            Message(
                message_id=str(m["MessageId"]),
                receipt=str(m["ReceiptHandle"]),
                body=str(m.get("Body", "")),
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            )
            for m in reply.get("Messages", [])
        ]

    def delete(self, message: Message) -> None:
        with mapped_errors(f"delete_message {message.message_id}"):
            self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt)

    def extend(self, message: Message, visibility_s: int) -> None:
        with mapped_errors(f"change_message_visibility {message.message_id}"):
            self._sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message.receipt, VisibilityTimeout=visibility_s
            )
