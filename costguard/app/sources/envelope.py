"""Which envelope a queue message arrived in, and what it carries.

An SQS body is one of: an SNS notification (its payload a string in `Message`); an EventBridge event; or the
payload itself (SNS raw message delivery, or costguard's own alert JSON). SNS may also carry an EventBridge event
(a rule with an SNS target). Nothing is guessed: a body that matches no envelope, or two, is an InvalidMessage.
https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html
https://docs.aws.amazon.com/sns/latest/dg/sns-large-payload-raw-message-delivery.html
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from costguard.app.sources.errors import InvalidMessage
from costguard.app.sources.wire import Name, OptAccountId, Text, Time, Wire, read

MAX_BODY_CHARS = 1_048_576  # SQS's largest message (1 MiB)


class SnsNotification(Wire):
    """The JSON SNS delivers to a queue without raw delivery; `Message` is the publisher's payload, as a string."""

    type: Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"] = Field(alias="Type")
    message_id: Name = Field(alias="MessageId")
    topic_arn: Text = Field(alias="TopicArn")
    message: Text = Field(alias="Message")
    timestamp: Time = Field(alias="Timestamp")
    subject: Text | None = Field(default=None, alias="Subject")


class EventBridgeEvent(Wire):
    """EventBridge's envelope; `source` and `detail-type` say what `detail` holds."""

    version: Text
    id: Name
    detail_type: Text = Field(alias="detail-type")
    source: Text
    account: OptAccountId = None  # AWS always sends it; moto's emulator leaves it out
    time: Time
    region: Text
    resources: list[Text]
    detail: dict[str, Any]


class Unwrapped(BaseModel):
    """A message with its envelopes opened: the payload is the event's detail, a JSON object, or plain text."""

    model_config = ConfigDict(frozen=True)

    sns: SnsNotification | None
    event: EventBridgeEvent | None
    payload: dict[str, Any] | str


_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _json(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than Python recurses
        return False, None


def _is_unicode(value: Any) -> bool:
    """False when a `\\udXXX` escape left a lone surrogate: such text cannot be stored or shown, so it is refused."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, RecursionError):
        return False
    return True


def _envelope_of(obj: dict[str, Any]) -> Literal["sns", "eventbridge", "none"]:
    is_sns = "Type" in obj and "TopicArn" in obj
    is_event = "detail-type" in obj and "source" in obj
    if is_sns and is_event:
        raise InvalidMessage("message looks like both an SNS notification and an EventBridge event")
    return "sns" if is_sns else "eventbridge" if is_event else "none"


def _open(text: str, where: str) -> tuple[Literal["sns", "eventbridge", "none"], dict[str, Any] | str]:
    ok, value = _json(text)
    if not ok:
        return "none", text
    if not isinstance(value, dict):
        raise InvalidMessage(f"{where} is JSON but not an object (it is {_JSON_TYPES.get(type(value), 'a value')})")
    if not _is_unicode(value):
        raise InvalidMessage(f"{where} holds a lone surrogate escape: not valid Unicode text")
    return _envelope_of(value), value


def unwrap(body: str) -> Unwrapped:
    """Open the envelopes of one SQS message body."""
    if len(body) > MAX_BODY_CHARS:
        raise InvalidMessage(f"message body of {len(body)} characters is longer than SQS allows")
    kind, outer = _open(body, "message body")
    sns: SnsNotification | None = None
    if kind == "sns":
        sns = read(SnsNotification, outer, "SNS notification")
        if sns.type != "Notification":
            return Unwrapped(sns=sns, event=None, payload=sns.message)
        kind, outer = _open(sns.message, "SNS Message")
        if kind == "sns":
            raise InvalidMessage("SNS Message holds another SNS envelope")
    if kind == "eventbridge":
        event = read(EventBridgeEvent, outer, "EventBridge event")
        return Unwrapped(sns=sns, event=event, payload=event.detail)
    return Unwrapped(sns=sns, event=None, payload=outer)
