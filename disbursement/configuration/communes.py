"""The commune gazetteer (`config/communes.csv`): commune code -> province,
region, name and centroid, which routing uses to find the nearest service point.
`load_communes` reads it once at startup; without the file routing still works,
only without distances (no nearest point).

The shipped file is ILLUSTRATIVE, written by `communes_writer`.
"""
from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from disbursement.configuration.errors import ConfigError
from disbursement.domain.service_points import BadCoordinate, Commune, to_micro_degrees

COMMUNES_FILE = "communes.csv"
COLUMNS = ("commune_code", "province_code", "region_code", "name", "latitude", "longitude")
# Degrees either side of zero a coordinate may take.
LIMITS = {"latitude": 90, "longitude": 180}


def load_communes(path: Path) -> dict[str, Commune]:
    """The gazetteer: commune code -> province, region, centroid; empty when
    the file is absent."""
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ConfigError(path, "line 1 (header)", f"the columns {', '.join(COLUMNS)}",
                              reader.fieldnames)
        return {row["commune_code"]: _commune(path, reader.line_num, row) for row in reader}


def _commune(path: Path, line: int, row: Mapping[str, str]) -> Commune:
    for column in COLUMNS[:4]:
        if not row.get(column):
            raise ConfigError(path, f"line {line}, {column}", "a value", row.get(column))
    latitude, longitude = (_degrees_of(path, line, row, name) for name in LIMITS)
    return Commune(row["commune_code"], row["province_code"], row["region_code"], row["name"],
                   latitude, longitude)


def _degrees_of(path: Path, line: int, row: Mapping[str, str], column: str) -> int:
    limit = LIMITS[column]
    try:
        return to_micro_degrees(row.get(column) or "", limit, column)
    except BadCoordinate:
        raise ConfigError(path, f"line {line}, {column}",
                          f"decimal degrees within -{limit}..{limit}", row.get(column)) from None

