"""Agreement records: for every reviewed plan, whether a person agreed with it; every undo counts against it.

One row per (thread, plan digest, vote, generation), written once however often a step re-runs; ordered by `seq`
(taken under the store's write lock, so the order is the same for every reader).
"""

from __future__ import annotations

from collections import defaultdict

from costguard.tools.store.sqlite import Store


def record_vote(
    store: Store, *, thread_id: str, digest: str, plan_class: str, vote: str, reviewer: str | None, generation: int = 0
) -> bool:
    """Record one vote; False when it was recorded before."""
    key = f"{thread_id}:{digest}:{vote}:{generation}"
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM cg_agreements WHERE key = ?", (key,)).fetchone():
            return False
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM cg_agreements").fetchone()["n"]
        conn.execute(
            "INSERT INTO cg_agreements (key, seq, at, thread_id, plan_class, vote, reviewer) VALUES (?,?,?,?,?,?,?)",
            (key, int(seq), store.now().isoformat(), thread_id, plan_class, vote, reviewer),
        )
    return True


def votes_by_class(store: Store) -> dict[str, list[str]]:
    """Every class's votes, oldest first."""
    found: dict[str, list[str]] = defaultdict(list)
    with store.reading() as conn:
        for row in conn.execute("SELECT plan_class, vote FROM cg_agreements ORDER BY seq").fetchall():
            found[str(row["plan_class"])].append(str(row["vote"]))
    return dict(found)
