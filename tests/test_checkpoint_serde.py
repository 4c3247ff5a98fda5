"""Checkpoint compression: round trips, older rows stay readable, unknown encodings are refused."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from costguard.graph.checkpoint import STATE_MODELS, ZDICT, Zlib, load_dictionaries, serializer
from costguard.state import Alert, Outcome

ALERT = Alert(alert_id="a-1", instance_id="i-0123456789abcdef0", monthly_cost_usd=42.5)
OUTCOME = Outcome(alert_id="a-1", thread_id="alert:a-1", status="executed", action="shutdown", executed=True)
STATE = {"alert": ALERT, "outcome": OUTCOME, "findings": ["cpu 1.5%"], "at": datetime(2026, 11, 25, tzinfo=UTC)}


def test_state_round_trips_compressed() -> None:
    serde = serializer()
    kind, data = serde.dumps_typed(STATE)
    assert kind == f"msgpack+zd-{ZDICT}"
    plain = JsonPlusSerializer(allowed_msgpack_modules=[(m.__module__, m.__name__) for m in STATE_MODELS])
    assert len(data) < len(plain.dumps_typed(STATE)[1]) / 2
    assert serde.loads_typed((kind, data)) == STATE


def test_rows_written_before_compression_or_with_plain_zlib_are_read() -> None:
    serde = serializer()
    plain = JsonPlusSerializer(allowed_msgpack_modules=[(m.__module__, m.__name__) for m in STATE_MODELS])
    kind, data = plain.dumps_typed(STATE)
    assert serde.loads_typed((kind, data)) == STATE
    assert serde.loads_typed((f"{kind}+zlib", zlib.compress(data))) == STATE


def test_small_blobs_that_would_grow_are_stored_raw() -> None:
    codec = Zlib()
    assert codec.encrypt(b"x") == ("raw", b"x")
    assert codec.decrypt("raw", b"x") == b"x"


def test_unknown_encoding_or_dictionary_is_refused() -> None:
    codec = Zlib()
    with pytest.raises(ValueError, match="unknown checkpoint encoding"):
        codec.decrypt("zd-000000000000", b"\x00")
    with pytest.raises(ValueError, match="unknown checkpoint encoding"):
        codec.decrypt("lz4", b"\x00")


def test_shipped_dictionaries_match_their_names() -> None:
    found = load_dictionaries()
    assert ZDICT in found
    assert 1_000 < len(found[ZDICT]) <= 32_768  # zlib's window


def test_a_truncated_blob_or_a_missing_dictionary_is_a_clear_error() -> None:
    codec = Zlib()
    name, packed = codec.encrypt(b"costguard " * 200)
    with pytest.raises(ValueError, match="truncated"):
        codec.decrypt(name, packed[: len(packed) // 2])
    with pytest.raises(ValueError, match="missing from costguard/data"):
        Zlib(dictionaries={}, current=ZDICT)


def test_every_model_in_the_state_may_be_read_back() -> None:
    """A state key whose model is not allowed comes back from a checkpoint as a plain dict (a warning, then a bug)."""
    import typing

    from pydantic import BaseModel

    from costguard.state import CostState

    def models(hint: object) -> set[type[BaseModel]]:
        found = {hint} if isinstance(hint, type) and issubclass(hint, BaseModel) else set()
        for arg in typing.get_args(hint):
            found |= models(arg)
        return found

    in_state = set().union(*(models(h) for h in typing.get_type_hints(CostState, include_extras=True).values()))
    ours = {m for m in in_state if m.__module__.startswith("costguard.")}  # messages are LangChain's own
    assert ours <= set(STATE_MODELS)
    assert len(ours) >= 10
