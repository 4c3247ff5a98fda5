"""Untrusted text made safe to carry: one line, no control or invisible characters, bounded length."""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"


def one_line(text: str, limit: int) -> str:
    """`text` with every control, format, surrogate or separator character as a space, runs collapsed, clipped."""
    spaced = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    collapsed = " ".join(spaced.split())
    if len(collapsed) <= limit:
        return collapsed
    return collapsed[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def is_printable(text: str) -> bool:
    """True when no character is a control, format, surrogate, private-use or unassigned one (ids, names)."""
    return all(unicodedata.category(ch)[0] != "C" for ch in text)


def quoted(text: str, limit: int = 60) -> str:
    """A short quoted excerpt of untrusted input, for an error reason."""
    return "'" + one_line(text, limit) + "'"
