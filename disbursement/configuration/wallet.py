"""`config/wallet.toml`: Bank Al-Maghrib's wallet tiers and the most a single
transfer may credit to a wallet of each, in one `WalletRules`."""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from disbursement.configuration.toml_tables import read_toml
from disbursement.domain.wallet import TIERS, WalletRules

WALLET_FILE = "wallet.toml"


def load_wallet_rules(config_dir: Path) -> WalletRules:
    table = read_toml(config_dir / WALLET_FILE)
    tiers = table.table("tiers")
    if sorted(tiers.data) != [str(tier) for tier in TIERS]:
        raise table.error("tiers", f"tiers {', '.join(map(str, TIERS))} exactly",
                          sorted(tiers.data))
    ceilings = {tier: tiers.integer(str(tier), expected="an integer number of centimes")
                for tier in TIERS}
    default_tier = table.integer("default_tier", expected=f"one of the tiers {TIERS}")
    if default_tier not in ceilings:
        raise table.error("default_tier", f"one of the tiers {TIERS}", default_tier)
    return WalletRules(table.text("currency"), default_tier, MappingProxyType(ceilings))
