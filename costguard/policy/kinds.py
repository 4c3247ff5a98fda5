"""The hard rails for the kinds other than instances: EBS volumes, Elastic IP addresses, RDS DB instances.

Every unknown fact refuses (fail closed). Savings come from the price list, never from the model.
"""

from __future__ import annotations

from typing import Protocol

from costguard.policy.model import Policy
from costguard.policy.protection import is_critical, is_production
from costguard.state import KIND_ACTIONS, Facts, gp3_matching_gp2

GP3 = "gp3"


class KindPrices(Protocol):
    def ipv4_hourly(self) -> float | None: ...

    def hourly(self, instance_type: str, region: str) -> float | None: ...

    def volume_gb_month(self, volume_type: str) -> float | None: ...

    def gp3_extra_prices(self) -> tuple[float, float] | None: ...

    def db_hourly(self, db_class: str, engine: str) -> float | None: ...


def hourly_price(prices: KindPrices, facts: Facts, policy: Policy) -> float | None:
    """What the resource costs an hour, from the price list; None when the list does not say."""
    if facts.resource_type == "instance":
        return prices.hourly(facts.instance_type, facts.region) if facts.instance_type else None
    if facts.resource_type == "volume":
        per_gb = prices.volume_gb_month(facts.volume_type or "")
        if per_gb is None or facts.size_gib is None:
            return None
        return per_gb * facts.size_gib / policy.hours_per_month
    if facts.resource_type == "address":
        return prices.ipv4_hourly()
    if facts.instance_type is None or facts.engine is None:
        return None
    return prices.db_hourly(facts.instance_type, facts.engine)


def _monthly(hourly: float | None, policy: Policy) -> float | None:
    return None if hourly is None else round(hourly * policy.hours_per_month, 2)


def kind_protection(facts: Facts, policy: Policy) -> list[str]:
    """Tags: critical anywhere; for a database, production alone protects it (it is a database by kind)."""
    if facts.tags is None:
        return ["tags_unreadable"]
    rules: list[str] = []
    if is_critical(facts.tags, policy):
        rules.append("critical_tag")
    if facts.resource_type == "db_instance" and is_production(facts.tags, policy):
        rules.append("production_database")
    return rules


def _volume(action: str, facts: Facts, prices: KindPrices, policy: Policy) -> tuple[list[str], float | None]:
    refusals: list[str] = []
    if action == "delete":
        if facts.attached_to is None or facts.state is None:
            refusals.append("attachment_unknown")
        elif facts.attached_to or facts.state != "available":
            refusals.append("volume_attached")
        if facts.unused_days is None:
            refusals.append("volume_age_unknown")
        elif facts.unused_days < policy.unattached_volume_min_days:
            refusals.append("volume_unused_too_briefly")
        return refusals, _monthly(hourly_price(prices, facts, policy), policy)
    # resize: gp2 -> gp3 (same size; gp3's baseline 3,000 IOPS and 125 MiB/s cover gp2 up to 1 TiB)
    if facts.volume_type != "gp2":
        refusals.append("volume_not_gp2")
    if facts.modifying is not False:
        refusals.append("volume_modification_in_progress" if facts.modifying else "modification_state_unknown")
    if facts.state not in ("available", "in-use"):
        refusals.append("volume_state_not_actionable")
    savings = gp3_savings(facts, prices)
    if savings is not None and savings <= 0:
        refusals.append("gp3_not_cheaper")  # a big volume's matching IOPS and throughput can cost more
    return refusals, savings


def gp3_savings(facts: Facts, prices: KindPrices) -> float | None:
    """What gp2 -> gp3 saves a month with the IOPS and throughput that keep it as fast (state.gp3_matching_gp2)."""
    now_price, gp3, extras = prices.volume_gb_month(facts.volume_type or ""), prices.volume_gb_month(GP3), None
    extras = prices.gp3_extra_prices()
    if now_price is None or gp3 is None or extras is None or facts.size_gib is None:
        return None
    iops, throughput = gp3_matching_gp2(facts.size_gib)
    added = (iops - 3_000) * extras[0] + (throughput - 125) * extras[1]
    return round((now_price - gp3) * facts.size_gib - added, 2)


def _address(facts: Facts, prices: KindPrices, policy: Policy) -> tuple[list[str], float | None]:
    if facts.association_id is None:
        return ["association_unknown"], None
    refusals = ["address_associated"] if facts.association_id else []
    return refusals, _monthly(hourly_price(prices, facts, policy), policy)


def _db_instance(facts: Facts, prices: KindPrices, policy: Policy) -> tuple[list[str], float | None]:
    """Snapshot then stop an idle, unprotected, single-AZ DB instance that is no replica. Unknown protects."""
    refusals: list[str] = []
    if facts.deletion_protection is not False:
        refusals.append("deletion_protection")
    if facts.multi_az is not False:
        refusals.append("multi_az")
    if facts.replication is not False:
        refusals.append("read_replica")
    if facts.engine is None or facts.engine.startswith("aurora"):
        refusals.append("engine_not_stoppable")  # an Aurora instance stops with its cluster, not alone
    if facts.state == "stopped":
        refusals.append("already_stopped")
    elif facts.state != "available":
        refusals.append("db_state_not_actionable")
    return refusals, _monthly(hourly_price(prices, facts, policy), policy)


def check_kind_action(action: str, facts: Facts, prices: KindPrices, policy: Policy) -> tuple[list[str], float | None]:
    """(refusals, savings per month) for a disruptive action on a volume, an address or a DB instance."""
    if not facts.exists:
        return ["resource_not_found"], None
    if action not in KIND_ACTIONS[facts.resource_type]:
        return [f"action_not_valid_for_{facts.resource_type}"], None
    refusals = kind_protection(facts, policy)
    if facts.resource_type == "volume":
        found, savings = _volume(action, facts, prices, policy)
    elif facts.resource_type == "address":
        found, savings = _address(facts, prices, policy)
    else:
        found, savings = _db_instance(facts, prices, policy)
    return refusals + found, savings
