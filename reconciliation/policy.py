"""Per-program and per-partner settings of reconciliation, read from the
configuration files once per directory:

- `config/programs/<program>.toml`: `expiry_days` (default 30), the days a
  transfer stays `available` (or `sent`) before it expires; `pay_arrears`
  (default false), whether a returned transfer's household is paid its
  arrears in a later cycle.
- `config/partners.toml`: `statement_sla_days` per partner (default 3), the
  days within which a payment must show on the partner's statement before its
  absence becomes an open exception.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

EXPIRY_DAYS = 30
STATEMENT_SLA_DAYS = 3


@dataclass(frozen=True)
class ProgramPolicy:
    code: str
    expiry_days: int = EXPIRY_DAYS
    pay_arrears: bool = False


@lru_cache(maxsize=8)
def programs(config_dir: Path) -> dict[str, ProgramPolicy]:
    out = {}
    for path in sorted((config_dir / "programs").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        code = data.get("code", path.stem)
        out[code] = ProgramPolicy(code, int(data.get("expiry_days", EXPIRY_DAYS)),
                                  bool(data.get("pay_arrears", False)))
    return out


def program(config_dir: Path, code: str) -> ProgramPolicy:
    return programs(config_dir).get(code, ProgramPolicy(code))


@lru_cache(maxsize=8)
def _sla_days(config_dir: Path) -> dict[str, int]:
    data = tomllib.loads((config_dir / "partners.toml").read_text(encoding="utf-8"))
    return {code: int(p.get("statement_sla_days", STATEMENT_SLA_DAYS))
            for code, p in data.get("partners", {}).items()}


def statement_sla_days(config_dir: Path, partner_code: str) -> int:
    return _sla_days(config_dir).get(partner_code, STATEMENT_SLA_DAYS)
