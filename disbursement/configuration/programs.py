"""`config/programs/*.toml`, one file per program: its entitlement amounts per
year, eligibility threshold, routing defaults, cash pickup window, re-issue and
reconciliation settings, all in one `ProgramRules`."""
from __future__ import annotations

from pathlib import Path

from disbursement.configuration.errors import ConfigError
from disbursement.configuration.toml_tables import Table, read_toml
from disbursement.domain.entitlement import EXPIRY_DAYS, ProgramRules, YearAmounts, score_to_micro
from disbursement.domain.reissue import NEVER_REISSUABLE, REASON_CODE

PROGRAMS_DIR = "programs"
CENTIMES = "an integer number of centimes"
RANK_AMOUNTS = "[ranks 1..band, later ranks] in centimes, two integers"
SCORE = "a decimal string with at most 6 decimals, e.g. \"9.743001\""
REISSUE_REASONS = ("a list of rejection reason codes that may be re-issued, e.g. [\"AC04\"] "
                   "(3-4 upper-case letters or digits)")


def load_programs(config_dir: Path) -> dict[str, ProgramRules]:
    """Every program of `<config_dir>/programs/`, by code."""
    programs: dict[str, ProgramRules] = {}
    for path in sorted((config_dir / PROGRAMS_DIR).glob("*.toml")):
        rules = load_program(path)
        if rules.code in programs:
            raise ConfigError(path, "code", "a code no other program file uses",
                              rules.code)
        programs[rules.code] = rules
    return programs


def load_program(path: Path) -> ProgramRules:
    table = read_toml(path)
    return ProgramRules(
        code=table.text("code"), name=table.text("name"), currency=table.text("currency"),
        score_max_micro=_score(table, "eligibility_score_max"),
        max_children=table.integer("max_children"),
        rank_band_size=table.integer("rank_band_size", expected="a positive integer",
                                     minimum=1),
        years=_years(table.table("years")),
        default_partner_by_region=_defaults(table.table("default_partner_by_region", {})),
        pickup_window_days=table.integer("pickup_window_days", 1,
                                         expected="a positive number of days", minimum=1),
        reissue_on_rejection=table.flag("reissue_on_rejection", False),
        reissue_reasons=_reissue_reasons(table),
        expiry_days=table.integer("expiry_days", EXPIRY_DAYS,
                                  expected="a positive number of days", minimum=1),
        pay_arrears=table.flag("pay_arrears", False),
    )


def _score(table: Table, name: str) -> int:
    text = table.text(name)
    try:
        return score_to_micro(text)
    except (ValueError, ArithmeticError):
        raise table.error(name, SCORE, text) from None


def _reissue_reasons(table: Table) -> frozenset[str]:
    """Required when the program re-issues at all: which rejections it re-issues
    is written down, never implied. Deceased, duplicate and identity reasons and
    wallet-rule refusals are refused here, so no file can allow them."""
    if not table.flag("reissue_on_rejection", False) and not table.has("reissue_reasons"):
        return frozenset()
    value = table.raw("reissue_reasons", None)
    if value is None:
        raise table.error("reissue_reasons", REISSUE_REASONS)
    if not isinstance(value, list) or not all(
            isinstance(code, str) and REASON_CODE.fullmatch(code) for code in value):
        raise table.error("reissue_reasons", REISSUE_REASONS, value)
    never = [code for code in value if code in NEVER_REISSUABLE]
    if never:
        named = ", ".join(f"{code} {NEVER_REISSUABLE[code]}" for code in never)
        raise table.error("reissue_reasons", "no code that is never re-issued (deceased, "
                          f"duplicate, identity, wallet rules): {named}", value)
    return frozenset(value)


def _years(years: Table) -> dict[int, YearAmounts]:
    out: dict[int, YearAmounts] = {}
    for year, amounts in years.tables():
        if not (len(year) == 4 and year.isascii() and year.isdigit()):
            raise years.error(year, "a four-digit year as the table name", year)
        out[int(year)] = YearAmounts(
            young_or_schooled=_rank_amounts(amounts, "young_or_schooled"),
            unschooled=_rank_amounts(amounts, "unschooled"),
            disabled=amounts.integer("disabled", expected=CENTIMES),
            orphan=amounts.integer("orphan", expected=CENTIMES),
            floor=amounts.integer("floor", expected=CENTIMES))
    return out


def _rank_amounts(amounts: Table, name: str) -> tuple[int, int]:
    value = amounts.raw(name)
    if (not isinstance(value, list) or len(value) != 2
            or any(type(v) is not int or v < 0 for v in value)):
        raise amounts.error(name, RANK_AMOUNTS, value)
    return value[0], value[1]


def _defaults(table: Table) -> dict[str, str]:
    return {region: table.text(region) for region in table.data}
