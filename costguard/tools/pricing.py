"""Hourly on-demand prices from the price list shipped in the package (never from the model)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from costguard.errors import PriceListError


@dataclass(frozen=True)
class PriceList:
    """`hourly(type, region)`: the region's price when listed, else the base list's; None if unknown."""

    base: dict[str, float]
    architectures: dict[str, str]
    regional: dict[str, dict[str, float]]
    ebs_gb_month: dict[str, float] = field(default_factory=dict)  # by volume type
    public_ipv4_hourly: float | None = None
    gp3_extras: tuple[float, float] | None = None  # per provisioned IOPS-month and MiB/s-month above the baseline
    rds: dict[str, dict[str, float]] = field(default_factory=dict)  # DB class -> engine family -> hourly

    def hourly(self, instance_type: str, region: str) -> float | None:
        listed = self.regional.get(region, {}).get(instance_type)
        return listed if listed is not None else self.base.get(instance_type)

    def architecture(self, instance_type: str) -> str | None:
        return self.architectures.get(instance_type)

    def known_types(self) -> list[str]:
        return sorted(self.base)

    def volume_gb_month(self, volume_type: str) -> float | None:
        return self.ebs_gb_month.get(volume_type)

    def gp3_extra_prices(self) -> tuple[float, float] | None:
        return self.gp3_extras

    def ipv4_hourly(self) -> float | None:
        """A public IPv4 address, associated or not (AWS charges both since February 2024)."""
        return self.public_ipv4_hourly

    def db_hourly(self, db_class: str, engine: str) -> float | None:
        """By engine family: `aurora-postgresql` is not `postgres`, so it is unknown (a review), not guessed."""
        return self.rds.get(db_class, {}).get(engine)


def _parse(doc: Any) -> PriceList:
    try:
        types = doc["instance_types"]
        base = {name: float(entry["hourly_usd"]) for name, entry in types.items()}
        arch = {name: str(entry["architecture"]) for name, entry in types.items()}
        regional = {
            region: {name: float(price) for name, price in prices.items()}
            for region, prices in doc.get("regions", {}).items()
        }
        ebs = {name: float(price) for name, price in doc.get("ebs_gb_month", {}).items()}
        ipv4 = doc.get("public_ipv4_hourly_usd")
        iops_price, throughput_price = doc.get("gp3_iops_month_usd"), doc.get("gp3_throughput_mibps_month_usd")
        extras = (
            None if iops_price is None or throughput_price is None else (float(iops_price), float(throughput_price))
        )
        rds = {
            name: {engine: float(price) for engine, price in engines.items()}
            for name, engines in doc.get("rds_hourly", {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PriceListError(f"malformed price list: {exc!r}") from exc
    return PriceList(base, arch, regional, ebs, None if ipv4 is None else float(ipv4), extras, rds)


def load_price_list(path: Path | None = None) -> PriceList:
    """The shipped list, or a file of the same shape (for your negotiated prices)."""
    try:
        if path is None:
            text = resources.files("costguard").joinpath("data/ec2_prices.json").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        return _parse(json.loads(text))
    except (OSError, json.JSONDecodeError) as exc:
        raise PriceListError(f"cannot read price list: {exc}") from exc
