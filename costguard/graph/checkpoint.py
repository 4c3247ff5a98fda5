"""Checkpoint persistence: the serializer (costguard's state models only, compressed) and the SQLite saver."""

from __future__ import annotations

import hashlib
import sqlite3
import time
import zlib
from importlib import resources
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from costguard.errors import ConfigError
from costguard.state import (
    Alert,
    Approval,
    Decision,
    DecisionParameters,
    Facts,
    Outcome,
    Plan,
    Result,
    ReviewResult,
    Schedule,
    Verdict,
)

STATE_MODELS = (
    Alert,
    Facts,
    Decision,
    DecisionParameters,
    Verdict,
    Plan,
    Approval,
    ReviewResult,
    Schedule,
    Result,
    Outcome,
)


ZDICT = "cdc4750bf728"  # the preset dictionary new checkpoints are compressed with (bench/zdict.py)


def load_dictionaries() -> dict[str, bytes]:
    """The shipped dictionaries by name (the first 12 hex digits of their SHA-256, checked)."""
    found: dict[str, bytes] = {}
    for entry in resources.files("costguard").joinpath("data").iterdir():
        if entry.name.startswith("checkpoint-") and entry.name.endswith(".zdict"):
            name = entry.name.removeprefix("checkpoint-").removesuffix(".zdict")
            data = entry.read_bytes()
            if hashlib.sha256(data).hexdigest()[:12] != name:
                raise ValueError(f"checkpoint dictionary {entry.name} does not match its name")
            found[name] = data
    return found


class Zlib:
    """A byte transform for LangGraph's `EncryptedSerializer` hook: zlib instead of a cipher.

    Most of a checkpoint's msgpack is the same field, channel and module names each time, so zlib
    with a preset dictionary of typical checkpoints (`ZDICT`) shrinks it several times over (figures:
    bench/results, workload 4). The encoding is stored with each row ("zd-<name>",
    "zlib", "raw" when it would not shrink); rows written without this transform (no "+" in
    their type) are read as before. A shipped dictionary never changes: rows need it to be read.
    """

    def __init__(self, dictionaries: dict[str, bytes] | None = None, current: str = ZDICT) -> None:
        self.dictionaries = load_dictionaries() if dictionaries is None else dictionaries
        if current not in self.dictionaries:
            raise ValueError(f"checkpoint dictionary {current!r} is missing from costguard/data (a broken install?)")
        self.current = current
        self._zdict = self.dictionaries[current]

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        packer = zlib.compressobj(6, zdict=self._zdict)
        packed = packer.compress(plaintext) + packer.flush()
        return (f"zd-{self.current}", packed) if len(packed) < len(plaintext) else ("raw", plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        if ciphername == "raw":
            return ciphertext
        if ciphername == "zlib":
            return zlib.decompress(ciphertext)
        zdict = self.dictionaries.get(ciphername.removeprefix("zd-")) if ciphername.startswith("zd-") else None
        if zdict is None:
            raise ValueError(f"unknown checkpoint encoding {ciphername!r}")
        unpacker = zlib.decompressobj(zdict=zdict)
        plaintext = unpacker.decompress(ciphertext) + unpacker.flush()
        if not unpacker.eof:
            raise ValueError("checkpoint blob is truncated")
        return plaintext


def serializer() -> EncryptedSerializer:
    """The checkpoint serializer: msgpack allowed to revive costguard's state models and nothing
    else, compressed (see Zlib)."""
    inner = JsonPlusSerializer(allowed_msgpack_modules=[(m.__module__, m.__name__) for m in STATE_MODELS])
    return EncryptedSerializer(Zlib(), inner)


def sqlite_checkpointer(path: Path | str) -> SqliteSaver:
    """A SqliteSaver on the costguard database file, in WAL mode with a busy timeout.

    `synchronous=NORMAL` (as the ledger and audit use): a committed checkpoint survives the
    process being killed; a power cut may lose the last few commits, never corrupt the file.
    What a lost commit could hide is recovered by reconciliation: snapshots are found by their
    idempotency tag and a stop or resize by the instance's state, so nothing is done twice.
    It makes each checkpoint several times cheaper than the default FULL (bench/results/profile.md).
    """
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        saver = SqliteSaver(conn, serde=serializer())
        saver.setup()
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot keep checkpoints in {path}: {exc}") from exc
    return saver


SETUP_LOCK = 7_262_016  # the advisory lock around PostgresSaver.setup (several workers start at once)


def postgres_checkpointer(url: str, *, max_connections: int = 32) -> BaseCheckpointSaver[str]:
    """LangGraph's PostgresSaver over a psycopg pool (autocommit, statements prepared at first use, dict rows, as
    its docs set it), with costguard's serializer; its tables created once, under an advisory lock."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            # try, don't wait inside a statement: the setup builds indexes CONCURRENTLY, which waits for every
            # open transaction, a blocked `pg_advisory_lock` call included (a deadlock, seen with two workers)
            while not conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (SETUP_LOCK,)).fetchone()[0]:  # type: ignore[index]
                time.sleep(0.1)
            try:
                PostgresSaver(conn, serde=serializer()).setup()  # type: ignore[arg-type]
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))
        pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
            open=True,
            timeout=60,
        )
    except psycopg.Error as exc:
        raise ConfigError(f"cannot keep checkpoints in {url}: {exc}") from exc
    return PostgresSaver(pool, serde=serializer())


def checkpointer_for(location: str | Path) -> BaseCheckpointSaver[str]:
    """The checkpointer for COSTGUARD_DB: PostgreSQL for a `postgresql://` URL, else the SQLite file."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        return postgres_checkpointer(location)
    return sqlite_checkpointer(location)
