"""Hourly on-demand prices from the price list shipped in the package (never from the model)."""

from __future__ import annotations

import json
from dataclasses import dataclass
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

    def hourly(self, instance_type: str, region: str) -> float | None:
        listed = self.regional.get(region, {}).get(instance_type)
        return listed if listed is not None else self.base.get(instance_type)

    def architecture(self, instance_type: str) -> str | None:
        return self.architectures.get(instance_type)

    def known_types(self) -> list[str]:
        return sorted(self.base)


def _parse(doc: Any) -> PriceList:
    try:
        types = doc["instance_types"]
        base = {name: float(entry["hourly_usd"]) for name, entry in types.items()}
        arch = {name: str(entry["architecture"]) for name, entry in types.items()}
        regional = {
            region: {name: float(price) for name, price in prices.items()}
            for region, prices in doc.get("regions", {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PriceListError(f"malformed price list: {exc!r}") from exc
    return PriceList(base, arch, regional)


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
