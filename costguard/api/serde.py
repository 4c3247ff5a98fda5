"""The served graph's checkpoints: costguard's state models registered with the server's serializer.

The LangGraph API server checkpoints with its own serializer, which warns about (and, in strict mode or a
future version, refuses) any class not on LangGraph's list of safe msgpack types. costguard's state models are
plain frozen pydantic models: adding them to that list registers them, in the server process only, so paused
threads keep loading and nothing else is allowed in.
"""

from __future__ import annotations

from langgraph.checkpoint.serde import _msgpack

from costguard.graph.checkpoint import STATE_MODELS


def register_state_models() -> None:
    """Add costguard's state models to the server's safe msgpack types (idempotent)."""
    ours = frozenset((model.__module__, model.__name__) for model in STATE_MODELS)
    if not ours <= _msgpack.SAFE_MSGPACK_TYPES:
        _msgpack.SAFE_MSGPACK_TYPES = _msgpack.SAFE_MSGPACK_TYPES | ours
