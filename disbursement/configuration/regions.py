"""`config/regions.toml`: the twelve regions, their provinces and population
shares, each in one `Region`. The shipped file is the default, for the
synthetic registry generator and the gazetteer writer that run without a
configuration directory."""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from disbursement.configuration.toml_tables import Table, read_toml
from disbursement.domain.regions import PER_MILLE, Region

REGIONS_FILE = "regions.toml"
DEFAULT_REGIONS_PATH = Path(__file__).resolve().parents[2] / "config" / REGIONS_FILE


def load_regions(path: Path = DEFAULT_REGIONS_PATH) -> dict[str, Region]:
    document = read_toml(Path(path))
    regions = document.table("regions")
    out: dict[str, Region] = {}
    province_owner: dict[str, str] = {}
    for code, entry in regions.tables():
        if not _digits(code, 2):
            raise regions.error(code, "a two-digit region code as the table name", code)
        region = Region(code, entry.text("name_fr"), entry.text("name_ar"),
                        entry.integer("population_permille"),
                        MappingProxyType(_provinces(entry.table("provinces"))))
        for province in region.provinces:
            if province in province_owner:
                raise entry.error(f"provinces.{province}", "a province listed in one region only "
                                  f"(province {province!r} is listed in regions "
                                  f"{province_owner[province]!r} and {code!r})", province)
            province_owner[province] = code
        out[code] = region
    total = sum(region.population_permille for region in out.values())
    if total != PER_MILLE:
        raise regions.error("*.population_permille", f"shares that add up to {PER_MILLE} per "
                            f"mille (they add up to {total} per mille, not {PER_MILLE})", total)
    return out


def _provinces(provinces: Table) -> dict[str, str]:
    for code in provinces.data:
        if not _digits(code, 3):
            raise provinces.error(code, "a three-digit province code", code)
    return {code: provinces.text(code) for code in provinces.data}


def _digits(text: str, length: int) -> bool:
    return len(text) == length and text.isascii() and text.isdigit()
