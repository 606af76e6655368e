"""Writes the ILLUSTRATIVE commune gazetteer (`config/communes.csv`, read by
`disbursement.configuration.communes`).

Like the province codes in regions.toml, the communes are those the synthetic
registry generator draws (`<province><001..COMMUNES_PER_PROVINCE>`), placed
around an approximate centroid of their region. Replace the file with the
official commune list and centroids before routing a real extract.

    python -m disbursement.configuration.communes_writer > config/communes.csv
"""
from __future__ import annotations

import csv
import math
import random
import sys
from collections.abc import Mapping
from typing import TextIO

from disbursement.configuration.communes import COLUMNS
from disbursement.configuration.regions import load_regions
from disbursement.domain.regions import COMMUNES_PER_PROVINCE, Region

# Approximate centroids of the twelve regions (decimal degrees).
REGION_CENTROIDS: dict[str, tuple[str, str]] = {
    "01": ("35.30", "-5.60"), "02": ("33.90", "-2.30"), "03": ("33.90", "-4.80"),
    "04": ("34.20", "-6.30"), "05": ("32.50", "-6.30"), "06": ("33.10", "-7.60"),
    "07": ("31.80", "-8.40"), "08": ("31.00", "-5.50"), "09": ("30.10", "-8.80"),
    "10": ("28.60", "-10.00"), "11": ("26.80", "-12.50"), "12": ("23.50", "-15.00"),
}
PROVINCE_RING_DEGREES = 0.6    # provinces sit on a ring around the region centroid
COMMUNE_SPREAD_DEGREES = 0.25  # communes scatter around their province centroid
MICRO = 1_000_000


def write_communes(stream: TextIO, regions: Mapping[str, Region] | None = None,
                   seed: int = 11) -> int:
    """Writes the gazetteer as CSV; returns the number of communes."""
    regions = load_regions() if regions is None else regions
    rng = random.Random(seed)
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for code in sorted(regions):
        lat0, lon0 = (int(float(v) * MICRO) for v in REGION_CENTROIDS[code])
        provinces = list(regions[code].provinces.items())
        for index, (province, province_name) in enumerate(provinces):
            angle = 2 * math.pi * index / len(provinces)
            plat = lat0 + int(PROVINCE_RING_DEGREES * MICRO * math.sin(angle))
            plon = lon0 + int(PROVINCE_RING_DEGREES * MICRO * math.cos(angle))
            for n in range(1, COMMUNES_PER_PROVINCE + 1):
                spread = int(COMMUNE_SPREAD_DEGREES * MICRO)
                lat = plat + rng.randint(-spread, spread)
                lon = plon + rng.randint(-spread, spread)
                writer.writerow([f"{province}{n:03d}", province, code,
                                 f"{province_name} commune {n}", _degrees(lat), _degrees(lon)])
                count += 1
    return count


def _degrees(micro: int) -> str:
    sign = "-" if micro < 0 else ""
    units, fraction = divmod(abs(micro), MICRO)
    return f"{sign}{units}.{fraction:06d}"


if __name__ == "__main__":
    write_communes(sys.stdout)
