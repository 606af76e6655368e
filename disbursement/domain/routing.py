"""Routing: which partner carries a household's transfer."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Partner:
    code: str
    name: str
    protocol: str
    base_url: str
    channels: frozenset[str]
    regions: frozenset[str]

    def covers(self, region_code: str, channel: str) -> bool:
        return region_code in self.regions and channel in self.channels


@dataclass(frozen=True, slots=True)
class Route:
    partner_code: str | None
    reason: str


def route(partners: dict[str, Partner], default_by_region: dict[str, str],
          region_code: str, channel: str, chosen_partner: str | None) -> Route:
    """The household's chosen partner when it covers the region and channel,
    else the program's default partner for the region."""
    chosen = partners.get(chosen_partner or "")
    if chosen is not None and chosen.covers(region_code, channel):
        return Route(chosen.code, "chosen partner covers the region")
    default = partners.get(default_by_region.get(region_code, ""))
    if default is not None and default.covers(region_code, channel):
        why = "chosen partner does not cover the region" if chosen_partner else "no chosen partner"
        return Route(default.code, f"program default for region {region_code} ({why})")
    for partner in sorted(partners.values(), key=lambda p: p.code):
        if partner.covers(region_code, channel):
            return Route(partner.code, f"first partner covering region {region_code} for {channel}")
    return Route(None, f"no partner covers region {region_code} for {channel}")


def load_partners(config_dir: Path) -> dict[str, Partner]:
    data = tomllib.loads((config_dir / "partners.toml").read_text(encoding="utf-8"))
    return {
        code: Partner(code=code, name=p["name"], protocol=p["protocol"], base_url=p["base_url"],
                      channels=frozenset(p["channels"]), regions=frozenset(p["regions"]))
        for code, p in data["partners"].items()
    }
