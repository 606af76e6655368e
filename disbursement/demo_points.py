"""Illustrative service points for the demo: about one agency per commune for
each cash partner in the provinces it covers, plus the "extra" points a partner
opens for a program in its busiest communes. Written as the partner's CSV file
and loaded through the same import as a real partner's file."""
from __future__ import annotations

import csv
import io
import random
from collections.abc import Mapping
from typing import TextIO

from disbursement.domain.routing import Partner
from disbursement.domain.service_points import Commune
from disbursement.services.cycles import service_points
from disbursement.services.cycles.service_points import COLUMNS

AGENCY_CAPACITY_TRANSFERS = 120
AGENCY_CAPACITY_CENTIMES = 150_000_00      # 150,000 MAD of cash a day
EXTRA_CAPACITY_TRANSFERS = 300
EXTRA_CAPACITY_CENTIMES = 400_000_00
EXTRA_EVERY_COMMUNES = 10                  # one extra point per ten communes
AGENCY_SHARE_PERCENT = 90                  # not every commune has an agency of every partner
JITTER_MICRO = 5_000                       # a point is near, not on, the commune centroid


def write_points(stream: TextIO, partner: Partner, communes: Mapping[str, Commune],
                 seed: int = 3) -> int:
    """Writes the partner's service-point file; returns the number of points."""
    rng = random.Random(f"{partner.code}-{seed}")
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    covered = [c for c in sorted(communes.values(), key=lambda c: c.code)
               if partner.covers(c.region_code, "cash", c.province_code)]
    for index, commune in enumerate(covered):
        if rng.randrange(100) < AGENCY_SHARE_PERCENT:
            count += _row(writer, rng, partner, commune, f"{partner.code}-{commune.code}",
                          f"{partner.name} agence {commune.name}", "mon-sat",
                          AGENCY_CAPACITY_TRANSFERS, AGENCY_CAPACITY_CENTIMES)
        if index % EXTRA_EVERY_COMMUNES == 0:
            count += _row(writer, rng, partner, commune, f"{partner.code}-X{commune.code}",
                          f"{partner.name} point temporaire {commune.name}", "mon-sun",
                          EXTRA_CAPACITY_TRANSFERS, EXTRA_CAPACITY_CENTIMES)
    return count


def _row(writer, rng, partner, commune, code, name, days, transfers, centimes) -> int:
    lat = commune.latitude_micro + rng.randint(-JITTER_MICRO, JITTER_MICRO)
    lon = commune.longitude_micro + rng.randint(-JITTER_MICRO, JITTER_MICRO)
    writer.writerow([code, name, f"centre, {commune.name}", commune.region_code,
                     commune.province_code, commune.code, _degrees(lat), _degrees(lon), days,
                     transfers, centimes])
    return 1


def _degrees(micro: int) -> str:
    sign = "-" if micro < 0 else ""
    units, fraction = divmod(abs(micro), 1_000_000)
    return f"{sign}{units}.{fraction:06d}"


def load_demo_points(svc, actor) -> dict[str, int]:
    """Generates and imports every cash partner's points; returns counts per partner."""
    communes = svc.configuration.communes
    loaded = {}
    for code, partner in sorted(svc.partners.items()):
        if "cash" not in partner.channels:
            continue
        text = io.StringIO()
        write_points(text, partner, communes)
        stream = io.BytesIO(text.getvalue().encode("utf-8"))
        loaded[code] = service_points.import_file(svc, code, stream, actor).rows
    return loaded
