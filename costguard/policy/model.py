"""The rules as data and the policy-file loader. Pure: nothing here reads the cloud or calls the model."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from costguard.errors import PolicyError
from costguard.policy.autonomy import AutonomyPolicy
from costguard.state import Phase, canonical_json, sha256_hex, validation_problems


class Policy(BaseModel):
    """Thresholds and word lists. Defaults are the design's; a TOML file overrides any key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: Phase = "observe"
    confidence_threshold: float = Field(default=0.7, ge=0, le=1)
    approval_threshold_usd_per_month: float = Field(default=100.0, ge=0, le=1e9)
    max_investigation_rounds: int = Field(default=2, ge=0, le=10)
    approvers: tuple[str, ...] = ()
    review_ttl_hours: float = Field(default=72.0, gt=0, le=24 * 366)
    hours_per_month: float = Field(default=730.0, gt=0, le=745)
    dry_run: bool = False
    decision_cache_ttl_s: float = Field(default=3600.0, ge=0, le=30 * 86400)
    busy_cpu_pct: float = Field(default=20.0, ge=0, le=100)
    # other kinds of waste
    unattached_volume_min_days: float = Field(default=7.0, ge=0, le=3650)  # a volume unused this long may go
    idle_db_max_connections: float = Field(default=0.0, ge=0)  # a DB instance with more is not idle
    # irreversible actions (delete, release) need a person in every phase; above 0, an autonomous-phase plan
    # saving at most this much a month may run without one
    irreversible_autonomous_max_usd_per_month: float = Field(default=0.0, ge=0, le=1e9)
    # autonomy earned by evidence (policy/autonomy.py): the [autonomy] table
    autonomy: AutonomyPolicy = Field(default_factory=AutonomyPolicy)
    critical_words: tuple[str, ...] = Field(default=("critical",), min_length=1)
    production_words: tuple[str, ...] = ("prod", "production", "prd", "live")
    environment_keys: tuple[str, ...] = (
        "env",
        "environment",
        "stage",
        "tier",
        "deployment",
        "deploy-env",
        "environment-name",
        "account-type",
    )
    role_keys: tuple[str, ...] = (
        "role",
        "service",
        "engine",
        "name",
        "app",
        "application",
        "component",
        "workload",
        "type",
    )
    database_words: tuple[str, ...] = (
        "db",
        "database",
        "rds",
        "sql",
        "postgres",
        "postgresql",
        "pg",
        "mysql",
        "mariadb",
        "aurora",
        "oracle",
        "mssql",
        "sqlserver",
        "mongo",
        "mongodb",
        "redis",
        "memcached",
        "cassandra",
        "dynamodb",
        "elasticsearch",
        "opensearch",
        "clickhouse",
        "cockroachdb",
        "neo4j",
        "couchdb",
        "etcd",
        "timescaledb",
        "influxdb",
    )

    @property
    def digest(self) -> str:
        """A short hash of the policy in force, carried by every plan and outcome."""
        return sha256_hex(canonical_json(self.model_dump(mode="json")))[:16]


def load_policy(path: Path | None, *, phase: Phase | None = None) -> Policy:
    """Defaults, then the TOML file (if any), then the `--phase` override."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise PolicyError(f"policy file {path} is not UTF-8 text: {exc.reason}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy file {path} is not valid TOML: {exc}") from exc
    if phase is not None:
        data["phase"] = phase
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(f"invalid policy{f' in {path}' if path else ''}: {validation_problems(exc)}") from exc


# --- tags --------------------------------------------------------------------------------
