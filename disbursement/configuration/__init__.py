"""Every configuration file, read once, typed.

One module per file of `config/` (programs, partners, regions, communes,
wallet, SMS templates), each the only reader of its file; `load_configuration`
reads them all when the composition root (`disbursement.bootstrap`) starts, so
a broken file stops the start with a `ConfigError` naming the file, the key and
what was expected, instead of failing later inside a use case. Everything else
receives the typed values, never a path to read.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from disbursement.configuration.communes import COMMUNES_FILE, load_communes
from disbursement.configuration.errors import ConfigError
from disbursement.configuration.partners import load_partners
from disbursement.configuration.programs import load_programs
from disbursement.configuration.regions import REGIONS_FILE, load_regions
from disbursement.configuration.sms_templates import load_sms_templates
from disbursement.configuration.wallet import load_wallet_rules
from disbursement.domain.entitlement import ProgramRules
from disbursement.domain.regions import Region
from disbursement.domain.routing import Partner
from disbursement.domain.service_points import Commune
from disbursement.domain.sms import SmsTemplates
from disbursement.domain.wallet import WalletRules

__all__ = ["ConfigError", "Configuration", "load_configuration"]


@dataclass(frozen=True)
class Configuration:
    programs: dict[str, ProgramRules]
    partners: dict[str, Partner]
    regions: Mapping[str, Region]
    communes: Mapping[str, Commune]
    wallet: WalletRules
    sms_templates: SmsTemplates


def load_configuration(config_dir: Path) -> Configuration:
    return Configuration(
        programs=load_programs(config_dir),
        partners=load_partners(config_dir),
        regions=load_regions(config_dir / REGIONS_FILE),
        communes=load_communes(config_dir / COMMUNES_FILE),
        wallet=load_wallet_rules(config_dir),
        sms_templates=load_sms_templates(config_dir),
    )
