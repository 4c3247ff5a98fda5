"""The store's tables, beside LangGraph's checkpoint tables in the same database."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS cg_ledger (
    key TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    step TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    intent_at TEXT NOT NULL,
    confirmed_at TEXT,
    result TEXT
);
CREATE TABLE IF NOT EXISTS cg_audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    authorized_by TEXT,
    event TEXT NOT NULL,
    instance_id TEXT,
    digest TEXT,
    result TEXT NOT NULL,
    detail TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cg_audit_thread ON cg_audit(thread_id, seq);
CREATE TABLE IF NOT EXISTS cg_threads (
    thread_id TEXT PRIMARY KEY,
    alert_id TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    outcome TEXT,
    alert TEXT
);
CREATE INDEX IF NOT EXISTS cg_threads_status ON cg_threads(status, updated_at);
CREATE TABLE IF NOT EXISTS cg_notices (
    key TEXT PRIMARY KEY,
    sent_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cg_resource_locks (
    resource_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cg_sources (
    source_id TEXT PRIMARY KEY,
    source_kind TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    outcome TEXT NOT NULL
);
"""
