"""The model's reply to a Decision: the named tool call, else JSON text; anything else says why not."""

from __future__ import annotations

from langchain_core.messages import AIMessage

from costguard.sandbox.scripted_model import ScriptedChatModel
from costguard.tools.llm.model import decision_schema, parse_reply, structured

ARGS = {"action": "monitor", "confidence": 0.5}


def test_the_named_tool_call_is_the_answer() -> None:
    reply = AIMessage(
        content="", tool_calls=[{"name": "other", "args": {}, "id": "1"}, {"name": "decision", "args": ARGS, "id": "2"}]
    )
    assert parse_reply(reply, "decision") == (ARGS, None)


def test_a_call_of_another_tool_is_no_answer() -> None:
    reply = AIMessage(content="", tool_calls=[{"name": "stop_instances", "args": ARGS, "id": "1"}])
    parsed, error = parse_reply(reply, "decision")
    assert parsed is None
    assert error is not None
    assert "another tool" in error


def test_json_text_with_or_without_fences() -> None:
    assert parse_reply(AIMessage(content='{"action": "monitor", "confidence": 0.5}'), "decision") == (ARGS, None)
    fenced = AIMessage(content='```json\n{"action": "monitor", "confidence": 0.5}\n```')
    assert parse_reply(fenced, "decision") == (ARGS, None)


def test_cut_off_json_garbage_refusals_and_non_messages_are_no_answer() -> None:
    for reply in (
        AIMessage(content='{"action": "shutdown", "confidence": 0.9'),
        AIMessage(content="I would stop it."),
        AIMessage(content="", additional_kwargs={"refusal": "no"}),
        "a string",
    ):
        parsed, error = parse_reply(reply, "decision")
        assert parsed is None
        assert error


def test_structured_binds_the_schema_as_a_tool_and_keeps_the_raw_reply() -> None:
    model = ScriptedChatModel(script=[dict(ARGS)])
    reply = structured(model, decision_schema("i-0123456789abcdef0"), "function_calling").invoke([("user", "hi")])
    assert reply["parsed"] == ARGS
    assert reply["parsing_error"] is None
    assert isinstance(reply["raw"], AIMessage)
    assert reply["raw"].tool_calls[0]["name"] == "decision"
