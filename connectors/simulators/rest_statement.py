"""The simulated partner's settlement statement, with its switchable flaws.

Format (UTF-8, comma separated, `\\n` line ends):

    reference,amount_centimes,currency,status,value_date,service_point
    D0000000000001,70000,MAD,paid,2026-12-05,SP-0001
    TRAILER,<lines written>,<sum of amount_centimes written>

The trailer describes the lines actually written, flaws included, as a real
partner's file does: reconciliation must find the flaws by matching, not by
trusting the trailer.
"""
from __future__ import annotations

import csv
import io
import random
import string
from collections.abc import Callable, Sequence
from datetime import date

from connectors.simulators.rest_book import SERVICE_POINT_COUNT, Faults, PaidLine

HEADER = ("reference", "amount_centimes", "currency", "status", "value_date", "service_point")
ALTERED_BY_CENTIMES = 100
EXTRA_REFERENCE_PREFIX = "X"           # never a prefix our planner issues ("D")
EXTRA_AMOUNT_RANGE_CENTIMES = (1_000, 500_000)


def render_statement(lines: Sequence[PaidLine], faults: Faults, seed: int,
                     is_known: Callable[[str], bool], today: date) -> bytes:
    """The statement for `lines` (sorted by reference) with `faults` applied.

    `seed` is fixed per simulator run so that fetching twice yields the same
    file; `is_known` keeps invented references clear of real ones.
    """
    rng = random.Random(seed)
    rows = list(lines)
    for index in sorted(_pick(rng, len(rows), faults.statement_missing_lines), reverse=True):
        del rows[index]
    for index in _pick(rng, len(rows), faults.statement_altered_lines):
        line = rows[index]
        rows[index] = PaidLine(line.reference, line.amount_centimes + ALTERED_BY_CENTIMES,
                               line.currency, line.value_date, line.service_point)
    duplicated = [rows[index] for index in _pick(rng, len(rows),
                                                 faults.statement_duplicate_lines)]
    rows.extend(duplicated)
    rows.extend(_invented(rng, faults.statement_extra_lines, is_known, today))
    rows.sort(key=lambda line: line.reference)    # stable: duplicates stay adjacent

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows((line.reference, line.amount_centimes, line.currency, "paid",
                      line.value_date, line.service_point) for line in rows)
    writer.writerow(("TRAILER", len(rows), sum(line.amount_centimes for line in rows)))
    return out.getvalue().encode("utf-8")


def _pick(rng: random.Random, population: int, count: int) -> list[int]:
    return rng.sample(range(population), min(count, population))


def _invented(rng: random.Random, count: int, is_known: Callable[[str], bool],
              today: date) -> list[PaidLine]:
    """Lines for transfers the partner never received."""
    invented: list[PaidLine] = []
    used: set[str] = set()
    while len(invented) < count:
        reference = EXTRA_REFERENCE_PREFIX + "".join(
            rng.choice(string.ascii_uppercase + string.digits) for _ in range(13))
        if reference in used or is_known(reference):
            continue
        used.add(reference)
        invented.append(PaidLine(reference, rng.randint(*EXTRA_AMOUNT_RANGE_CENTIMES), "MAD",
                                 today.isoformat(),
                                 f"SP-{rng.randint(1, SERVICE_POINT_COUNT):04d}"))
    return invented
