"""`config/partners.toml`: every payment partner, its protocol, coverage,
capacity, fee tables, statement deadline and (for a bank) the programme's
funding account, each in one `Partner`. Keys and secrets are never here: they
come from the environment (`disbursement.settings`)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from disbursement.configuration.toml_tables import Table, read_toml
from disbursement.domain.rib import rib_problem
from disbursement.domain.routing import (
    CHANNELS,
    STATEMENT_SLA_DAYS,
    FeeTier,
    FundingAccount,
    Partner,
)

PARTNERS_FILE = "partners.toml"
# The protocols a connector speaks (connectors/factory.py); the bank one needs
# a funding account.
PROTOCOLS = ("rest", "wallet", "sftp_csv", "iso20022")
BANK_PROTOCOL = "iso20022"
TIER = "[up_to_centimes, fee_centimes], two non-negative integers"


def load_partners(config_dir: Path) -> dict[str, Partner]:
    table = read_toml(config_dir / PARTNERS_FILE)
    return parse_partners(table.file, table.data)


def parse_partners(file: Path, data: Mapping[str, object]) -> dict[str, Partner]:
    """The partners of an already parsed partners.toml (`file` names it in errors)."""
    partners = Table(file, "", data).table("partners")
    return {code: _partner(code, entry) for code, entry in partners.tables()}


def _partner(code: str, p: Table) -> Partner:
    protocol = p.text("protocol")
    if protocol not in PROTOCOLS:
        raise p.error("protocol", f"one of {', '.join(PROTOCOLS)}", protocol)
    channels = p.texts("channels")
    if not channels or not set(channels) <= CHANNELS:
        raise p.error("channels", f"a list of {', '.join(sorted(CHANNELS))}", list(channels))
    regions = frozenset(p.texts("regions"))
    provinces = frozenset(p.texts("provinces", ()))
    stray = sorted(pr for pr in provinces if pr[:2] not in regions)
    if stray:
        raise p.error("provinces", "provinces inside the partner's regions", stray)
    capacity = (p.integer("daily_capacity_transfers")
                if p.has("daily_capacity_transfers") else None)
    return Partner(code=code, name=p.text("name"), protocol=protocol,
                   base_url=p.text("base_url"), channels=frozenset(channels), regions=regions,
                   provinces=provinces, daily_capacity_transfers=capacity,
                   fees=_fees(p.table("fees", {})),
                   statement_sla_days=p.integer("statement_sla_days", STATEMENT_SLA_DAYS,
                                                expected="a positive number of days",
                                                minimum=1),
                   funding_account=_funding_account(p, protocol))


def _fees(fees: Table) -> dict[str, tuple[FeeTier, ...]]:
    out = {}
    for channel in fees.data:
        if channel not in CHANNELS:
            raise fees.error(channel, f"a channel, one of {', '.join(sorted(CHANNELS))}",
                             channel)
        out[channel] = _tiers(fees, channel)
    return out


def _tiers(fees: Table, channel: str) -> tuple[FeeTier, ...]:
    rows = fees.raw(channel)
    if not isinstance(rows, list):
        raise fees.error(channel, f"a list of tiers, each {TIER}", rows)
    tiers = []
    for row in rows:
        if (not isinstance(row, list) or len(row) != 2
                or any(type(v) is not int or v < 0 for v in row)):
            raise fees.error(channel, f"every tier {TIER}", row)
        tiers.append(FeeTier(row[0], row[1]))
    bounds = [t.up_to_centimes for t in tiers]
    if bounds != sorted(set(bounds)):
        raise fees.error(channel, "tiers in ascending order (tier bounds must increase)",
                         bounds)
    return tuple(tiers)


def _funding_account(p: Table, protocol: str) -> FundingAccount | None:
    """Required of a bank; read (and its RIB checked) wherever it is given."""
    if protocol != BANK_PROTOCOL and not p.has("debtor_rib") and not p.has("debtor_name"):
        return None
    name = p.text("debtor_name")
    rib = p.text("debtor_rib")
    problem = rib_problem(rib)
    if problem:
        raise p.error("debtor_rib", f"a valid 24-digit RIB ({problem})", rib)
    return FundingAccount(name=name, rib=rib, bic=p.optional_text("debtor_bic"))
