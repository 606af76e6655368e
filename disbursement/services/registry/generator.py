"""Synthetic registry extracts for the demo and the benchmarks.

The households are invented but shaped like the real registry: regions weighted
by population, mostly one to four children, a score distribution where most
households fall under the eligibility threshold. The same seed always gives the
same file, so benchmarks and demos can be reproduced and compared.

CIN prefixes, bank codes and names below are plausible, not official lists.
"""
from __future__ import annotations

import contextlib
import csv
import itertools
import json
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, NamedTuple

from disbursement.configuration.regions import load_regions
from disbursement.domain.regions import COMMUNES_PER_PROVINCE, Region
from disbursement.domain.rib import rib_key
from disbursement.domain.wallet import normalise_mobile
from disbursement.services.registry.schema import COLUMNS

# Illustrative CIN letter prefixes per region (real cards carry the letters of
# the issuing office; these only need to look right in a demo).
CIN_PREFIXES: dict[str, tuple[str, ...]] = {
    "01": ("K", "KB", "L", "LC", "R"), "02": ("F", "FA", "FB", "S", "SA"),
    "03": ("C", "CD", "D", "DA", "Z"), "04": ("A", "AB", "AE", "G", "GA"),
    "05": ("I", "IA", "Q", "QA"), "06": ("B", "BE", "BH", "BK", "M", "N"),
    "07": ("E", "EE", "H", "HA", "P"), "08": ("U", "UA", "UB"),
    "09": ("J", "JB", "JC", "JE"), "10": ("JA", "JK"), "11": ("SH", "SJ"), "12": ("SL",),
}
# (French transliteration, Arabic script)
FIRST_NAMES = (
    ("Mohamed", "محمد"), ("Fatima", "فاطمة"), ("Ahmed", "أحمد"), ("Khadija", "خديجة"),
    ("Youssef", "يوسف"), ("Aïcha", "عائشة"), ("Hassan", "حسن"), ("Zineb", "زينب"),
    ("Rachid", "رشيد"), ("Naïma", "نعيمة"), ("Abdellah", "عبد الله"), ("Malika", "مليكة"),
    ("Saïd", "سعيد"), ("Hafsa", "حفصة"), ("Omar", "عمر"), ("Latifa", "لطيفة"),
)
LAST_NAMES = (
    ("El Idrissi", "الإدريسي"), ("Benali", "بنعلي"), ("El Amrani", "العمراني"),
    ("Bennani", "بناني"), ("Tazi", "التازي"), ("Alaoui", "العلوي"), ("Berrada", "برادة"),
    ("Chraïbi", "الشرايبي"), ("Ouazzani", "الوزاني"), ("Aït Ahmed", "آيت أحمد"), ("Lahlou", "لحلو"),
    ("Ziani", "الزياني"), ("Mansouri", "المنصوري"), ("Kettani", "الكتاني"), ("El Fassi", "الفاسي"),
    ("Haddaoui", "الحداوي"),
)
BANK_CODES = ("007", "011", "013", "021", "022", "145", "190", "230", "350")
PARTNER_CODES = ("BARID", "CASHPLUS", "WAFACASH")

# Score in micro-units: ~85% at or under the 9.743001 threshold.
SCORE_THRESHOLD_MICRO = 9_743_001
SHARE_UNDER_THRESHOLD_PERCENT = 85
# Children per household for a family that has any: mostly one to four.
CHILDREN_WEIGHTS = {1: 22, 2: 28, 3: 22, 4: 14, 5: 7, 6: 4, 7: 2, 8: 1}
# Multipliers coprime with 10 turn a counter into a scrambled but unique
# number modulo 10^k, so CINs, phones and accounts never repeat in a file.
_SCRAMBLE = 7_919_173


class BrokenRow(NamedTuple):
    """A deliberately broken row written by `write_csv`/`write_jsonl`."""

    line: int
    household_id: str
    field: str  # the field the validator must complain about


_DEFECTS = ("cin", "children_0_5", "region_code", "household_id")


def generate_households(
    n: int, seed: int = 7, *, regions: Mapping[str, Region] | None = None
) -> Iterator[dict[str, str]]:
    """Yield n valid rows (column -> string), like the rows of a CSV extract."""
    regions = load_regions() if regions is None else regions
    rng = random.Random(seed)
    codes = sorted(regions)
    cum_weights = list(itertools.accumulate(regions[code].population_permille for code in codes))
    provinces = {code: tuple(regions[code].provinces) for code in codes}
    counts = tuple(CHILDREN_WEIGHTS)
    count_weights = tuple(CHILDREN_WEIGHTS.values())
    # Per-prefix counter, scrambled and shifted per prefix, so that CINs are
    # unique (up to 10^6 per prefix) without looking like a sequence.
    cin_serial: dict[str, int] = {}
    cin_shift = {prefix: rng.randrange(1_000_000)
                 for code in codes for prefix in CIN_PREFIXES.get(code, ("X",))}
    for index in range(n):
        region = rng.choices(codes, cum_weights=cum_weights)[0]
        province = rng.choice(provinces[region])
        prefix = rng.choice(CIN_PREFIXES.get(region, ("X",)))
        cin_serial[prefix] = cin_serial.get(prefix, 0) + 1
        cin_number = (cin_serial[prefix] * _SCRAMBLE + cin_shift[prefix]) % 1_000_000
        row = {
            "household_id": f"RSU-{index + 1:08d}",
            "cin": f"{prefix}{cin_number:06d}",
            "head_name": _name(rng),
            "phone": "" if rng.random() < 0.08 else _phone(rng, index, seed),
            "region_code": region,
            "province_code": province,
            "commune_code": f"{province}{rng.randint(1, COMMUNES_PER_PROVINCE):03d}",
            "score": _score(rng),
            "partner_code": rng.choice(PARTNER_CODES) if rng.random() < 0.15 else "",
        }
        row.update(_family(rng, counts, count_weights))
        row.update(_channel(rng, index, seed, row["phone"]))
        yield {column: row[column] for column in COLUMNS}


def _name(rng: random.Random) -> str:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    if rng.random() < 0.5:
        return f"{first[0]} {last[0]}"
    return f"{first[1]} {last[1]}"


def _phone(rng: random.Random, index: int, seed: int) -> str:
    lead = rng.choice("67")
    rest = f"{((index + 1) * _SCRAMBLE + seed) % 100_000_000:08d}"
    # Only ranges the numbering plan gives to mobiles (the wallet refuses the
    # others, e.g. 0790...): every rest is valid after a 6 or after a 7, so
    # flipping the lead keeps the number unique and the seeded stream as it was.
    if normalise_mobile(f"0{lead}{rest}") is None:
        lead = "7" if lead == "6" else "6"
    digits = lead + rest
    # Some agents type the international form; the schema normalises both.
    return f"+212{digits}" if rng.random() < 0.1 else f"0{digits}"


def _score(rng: random.Random) -> str:
    if rng.randrange(100) < SHARE_UNDER_THRESHOLD_PERCENT:
        micro = rng.randrange(1_500_000, SCORE_THRESHOLD_MICRO)
    else:
        micro = rng.randrange(SCORE_THRESHOLD_MICRO, 30_000_000)
    units, fraction = divmod(micro, 1_000_000)
    return f"{units}.{fraction:06d}".rstrip("0").rstrip(".")


def _family(rng: random.Random, counts: tuple[int, ...],
            weights: tuple[int, ...]) -> dict[str, str]:
    flat_rate = rng.random() < 0.05  # elderly households, no dependent children
    children = 0 if flat_rate or rng.random() < 0.055 else rng.choices(counts, weights)[0]
    bands = [0, 0, 0]  # 0-5, schooled 6-20, not schooled 6-20
    for _ in range(children):
        bands[rng.choices((0, 1, 2), (30, 60, 10))[0]] += 1
    disabled = 0
    if children and rng.random() < 0.045:
        disabled = 1 if children == 1 or rng.random() < 0.8 else 2
    orphan = children > 0 and rng.random() < 0.033
    return {
        "children_0_5": str(bands[0]), "children_schooled_6_20": str(bands[1]),
        "children_unschooled_6_20": str(bands[2]), "disabled_children": str(disabled),
        "orphan": rng.choice(("1", "true", "yes")) if orphan else rng.choice(("0", "false", "no")),
        "flat_rate": "1" if flat_rate else "0",
    }


def _channel(rng: random.Random, index: int, seed: int, phone: str) -> dict[str, str]:
    draw = rng.randrange(100)
    if draw < 75:
        return {"channel": "cash", "account": "", "wallet_phone": "", "wallet_tier": ""}
    if draw < 90:
        # Tier 2 or 3 by position, not by a draw, so the seeded stream (and every
        # other column of a seeded file) stays what it was before tiers existed.
        return {"channel": "wallet", "account": "",
                "wallet_phone": phone or _phone(rng, index, seed),
                "wallet_tier": "3" if index % 4 == 0 else "2"}
    return {"channel": "bank", "account": make_rib(rng, index), "wallet_phone": "",
            "wallet_tier": ""}


def make_rib(rng: random.Random, index: int) -> str:
    """A RIB with a correct key: bank 3 + city 3 + account 16 + key 2."""
    body = f"{rng.choice(BANK_CODES)}{rng.randint(100, 999)}{(index + 1) * _SCRAMBLE % 10**16:016d}"
    return body + rib_key(body)


def _with_defects(n: int, seed: int, bad_rows: int) -> Iterator[tuple[dict[str, str], str | None]]:
    if not 0 <= bad_rows < max(n, 1):
        raise ValueError(f"bad_rows must be between 0 and n - 1 ({n - 1}), got {bad_rows}")
    # Spread evenly and never at index 0, so a duplicate id has a predecessor.
    positions = {(k + 1) * n // (bad_rows + 1): k for k in range(bad_rows)}
    previous_id = ""
    for index, row in enumerate(generate_households(n, seed)):
        defect = _DEFECTS[positions[index] % len(_DEFECTS)] if index in positions else None
        if defect == "cin":
            row["cin"] = "12AB"
        elif defect == "children_0_5":
            row["children_0_5"] = "-1"
        elif defect == "region_code":
            row["region_code"] = "13"
        elif defect == "household_id":
            row["household_id"] = previous_id
        previous_id = row["household_id"]
        yield row, defect


def write_csv(target: str | Path | IO[str], n: int, seed: int = 7,
              bad_rows: int = 0) -> list[BrokenRow]:
    """Write a header and n rows (bad_rows of them broken); returns the broken rows."""
    with _open(target) as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        broken = []
        for index, (row, defect) in enumerate(_with_defects(n, seed, bad_rows)):
            writer.writerow(row.values())
            if defect is not None:
                broken.append(BrokenRow(index + 2, row["household_id"], defect))  # header is line 1
    return broken


def write_jsonl(target: str | Path | IO[str], n: int, seed: int = 7,
                bad_rows: int = 0) -> list[BrokenRow]:
    """Like write_csv, one JSON object per line with JSON-typed counts and
    flags; the score stays a string so no float ever appears."""
    with _open(target) as stream:
        broken = []
        for index, (row, defect) in enumerate(_with_defects(n, seed, bad_rows)):
            stream.write(json.dumps(_typed(row), ensure_ascii=False) + "\n")
            if defect is not None:
                broken.append(BrokenRow(index + 1, row["household_id"], defect))
    return broken


def _typed(row: dict[str, str]) -> dict[str, object]:
    typed: dict[str, object] = {key: value for key, value in row.items() if value != ""}
    for key in ("children_0_5", "children_schooled_6_20", "children_unschooled_6_20",
                "disabled_children"):
        typed[key] = int(row[key])
    for key in ("orphan", "flat_rate"):
        typed[key] = row[key] in ("1", "true", "yes")
    return typed


def _open(target: str | Path | IO[str]) -> contextlib.AbstractContextManager[IO[str]]:
    if isinstance(target, (str, Path)):
        return open(target, "w", encoding="utf-8", newline="")
    return contextlib.nullcontext(target)  # the caller's stream stays open
