"""The served graph's people: identities, roles and API keys (stored as SHA-256 hashes only), from a TOML file.

    [[user]]
    identity = "alice@example.com"
    roles = ["reviewer"]                # submitter: starts runs; reviewer: answers reviews; viewer: reads
    api_key_sha256 = "…"               # the SHA-256 of the key (README: "Review in a browser")

The file is named by COSTGUARD_REVIEWERS. Every role can read; a reviewer also needs to be on the policy's
`approvers` to approve (the graph checks that, the server only checks the role).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from costguard.errors import ConfigError
from costguard.state import validation_problems

REVIEWERS_ENV = "COSTGUARD_REVIEWERS"
Role = Literal["submitter", "reviewer", "viewer"]
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "submitter": ("read", "submit"),
    "reviewer": ("read", "review"),
    "viewer": ("read",),
}


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: str = Field(min_length=1, max_length=200)
    roles: tuple[Role, ...] = Field(min_length=1)
    api_key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @property
    def permissions(self) -> tuple[str, ...]:
        return tuple(sorted({p for role in self.roles for p in PERMISSIONS[role]}))


class Reviewers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user: tuple[Person, ...] = ()

    def find(self, api_key: str) -> Person | None:
        """The person whose key this is (compared in constant time), or None."""
        digest = key_hash(api_key)
        found = None
        for person in self.user:
            if hmac.compare_digest(person.api_key_sha256, digest):
                found = person
        return found


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def load_reviewers(path: Path | None = None) -> Reviewers:
    """The reviewers file (COSTGUARD_REVIEWERS by default); ConfigError when it is missing or invalid."""
    named = path or (Path(os.environ[REVIEWERS_ENV]) if os.environ.get(REVIEWERS_ENV) else None)
    if named is None:
        raise ConfigError(f"{REVIEWERS_ENV} is not set: the served graph lets nobody in without a reviewers file")
    try:
        data = tomllib.loads(named.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the reviewers file {named}: {exc}") from exc
    try:
        reviewers = Reviewers.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid reviewers file {named}: {validation_problems(exc)}") from exc
    identities = [p.identity for p in reviewers.user]
    if len(set(identities)) != len(identities):
        raise ConfigError(f"invalid reviewers file {named}: an identity appears twice")
    return reviewers
