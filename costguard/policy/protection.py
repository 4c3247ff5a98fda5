"""Protected instances: critical tags and production databases, matched by words, failing closed."""

from __future__ import annotations

import re
from collections.abc import Mapping

from costguard.policy.model import Policy
from costguard.state import Facts

_TOKEN = re.compile(r"[a-z]+|[0-9]+")


def _norm(text: str) -> str:
    return text.strip().lower()


def _tokens(text: str) -> set[str]:
    return set(_TOKEN.findall(text.lower()))


_FALSY = {"false", "no", "0", "n", "off", "none", "null", "n/a", "na"}


def _affirms(value: str) -> bool:
    """A tag whose key carries the meaning counts unless its value plainly denies it."""
    return _norm(value) not in _FALSY


def is_critical(tags: Mapping[str, str], policy: Policy) -> bool:
    """Any tag key or value that is, or contains the word, "critical" (any case, trimmed)."""
    words = {w.lower() for w in policy.critical_words}
    for key, value in tags.items():
        for text in (key, value):
            if _norm(text) in words or _tokens(text) & words:
                return True
    return False


def _looks_like_database(text: str, policy: Policy) -> bool:
    words = {w.lower() for w in policy.database_words}
    lowered = text.lower()
    if _tokens(lowered) & words:
        return True
    # compounds and versions: "ordersdb", "pgsql", "postgres14", "redis7", "oracle19c", "sqlserver2019"
    chunks = re.findall(r"[a-z0-9]+", lowered)
    return any(
        chunk.endswith(("db", "sql")) or any(chunk.startswith(w) for w in words if len(w) >= 4) for chunk in chunks
    )


def _key_means(key: str, words: set[str]) -> bool:
    """`deploy_env`, `Environment_Name`, `env` all mean an environment key."""
    return _norm(key) in words or bool(_tokens(key) & words)


def is_production(tags: Mapping[str, str], policy: Policy) -> bool:
    """An environment-like (or name-like) tag meaning production, or a `Production: true` tag."""
    prod = {w.lower() for w in policy.production_words}
    env_keys = {k.lower() for k in policy.environment_keys}
    name_like = {k.lower() for k in policy.role_keys}
    for key, value in tags.items():
        if _key_means(key, prod) and _affirms(value):  # e.g. {"Production": "true"}
            return True
        if (_key_means(key, env_keys) or _key_means(key, name_like)) and _tokens(value) & prod:
            return True
    return False


def is_database(tags: Mapping[str, str], policy: Policy) -> bool:
    role_keys = {k.lower() for k in policy.role_keys}
    for key, value in tags.items():
        if _key_means(key, role_keys) and _looks_like_database(value, policy):
            return True
        if _looks_like_database(key, policy) and _affirms(value):  # e.g. {"Database": "orders"}
            return True
    return False


def protection_rules(facts: Facts, policy: Policy) -> list[str]:
    """Rules that forbid any disruptive action on this instance (empty: not protected)."""
    if facts.tags is None:
        return ["tags_unreadable"]
    rules: list[str] = []
    if is_critical(facts.tags, policy):
        rules.append("critical_tag")
    if is_production(facts.tags, policy) and is_database(facts.tags, policy):
        rules.append("production_database")
    return rules


# --- prices ------------------------------------------------------------------------------
