"""The store's tables (ledger, audit chain, thread index, telemetry, sources, locks), in SQLite and PostgreSQL,
beside LangGraph's checkpoint tables in the same database. Times are ISO-8601 text in both, so rows compare and
read back the same way. A new table or column goes in both and bumps SCHEMA_VERSION (recorded in cg_schema)."""

SCHEMA_VERSION = 1

SQLITE = """
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

CREATE TABLE IF NOT EXISTS cg_model_calls (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s REAL NOT NULL,
    schema_valid INTEGER NOT NULL,
    cached INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS cg_model_calls_at ON cg_model_calls(at);
CREATE TABLE IF NOT EXISTS cg_steps (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    node TEXT NOT NULL,
    ok INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    error_class TEXT,
    confidence REAL
);
CREATE TABLE IF NOT EXISTS cg_agreements (
    key TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    plan_class TEXT NOT NULL,
    vote TEXT NOT NULL,
    reviewer TEXT
);
CREATE TABLE IF NOT EXISTS cg_reviews (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    decision TEXT NOT NULL,
    latency_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cg_decision_cache (
    prompt_hash TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    decision TEXT NOT NULL
);
"""

POSTGRES = """
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
    seq BIGINT PRIMARY KEY,
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

CREATE TABLE IF NOT EXISTS cg_model_calls (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    latency_s DOUBLE PRECISION NOT NULL,
    schema_valid INTEGER NOT NULL,
    cached INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS cg_model_calls_at ON cg_model_calls(at);
CREATE TABLE IF NOT EXISTS cg_steps (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    node TEXT NOT NULL,
    ok INTEGER NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    error_class TEXT,
    confidence DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS cg_agreements (
    key TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    plan_class TEXT NOT NULL,
    vote TEXT NOT NULL,
    reviewer TEXT
);
CREATE TABLE IF NOT EXISTS cg_reviews (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    decision TEXT NOT NULL,
    latency_s DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS cg_decision_cache (
    prompt_hash TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    decision TEXT NOT NULL
);
"""
