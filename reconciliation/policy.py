"""Per-program and per-partner settings of reconciliation, taken from the
configuration read at startup (`disbursement.configuration`), with the
defaults that hold for a program or partner the configuration does not know
(a transfer of a program since removed from `config/programs/` still expires):

- a program's `expiry_days` (default 30), the days a transfer stays `available`
  (or `sent`) before it expires, and `pay_arrears` (default false), whether a
  returned transfer's household is paid its arrears in a later cycle;
- a partner's `statement_sla_days` (default 3), the days within which a payment
  must show on the partner's statement before its absence becomes an open
  exception.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from disbursement.domain.entitlement import EXPIRY_DAYS, ProgramRules
from disbursement.domain.routing import STATEMENT_SLA_DAYS, Partner


@dataclass(frozen=True)
class ProgramPolicy:
    code: str
    expiry_days: int = EXPIRY_DAYS
    pay_arrears: bool = False


def program(programs: Mapping[str, ProgramRules], code: str) -> ProgramPolicy:
    rules = programs.get(code)
    if rules is None:
        return ProgramPolicy(code)
    return ProgramPolicy(code, rules.expiry_days, rules.pay_arrears)


def statement_sla_days(partners: Mapping[str, Partner], partner_code: str) -> int:
    partner = partners.get(partner_code)
    return STATEMENT_SLA_DAYS if partner is None else partner.statement_sla_days
