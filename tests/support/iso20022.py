"""Test data for the ISO 20022 and MT940 tests: RIBs, transfers, strategies."""
from __future__ import annotations

from hypothesis import strategies as st

from connectors.base import OutboundTransfer
from disbursement.domain.references import new_reference
from disbursement.domain.rib import rib_key

BANK_CODES = ("007", "011", "013", "022", "101", "145", "190", "225", "230", "350")


def rib(bank: str = "007", city: str = "780", account: str = "0001234567890123") -> str:
    body = bank + city + account
    return body + rib_key(body)


def transfer(reference: str | None = None, amount_centimes: int = 50_000, *,
             account: str | None = None,
             currency: str = "MAD", name: str = "Fatima Zahra El Idrissi") -> OutboundTransfer:
    return OutboundTransfer(reference or new_reference(), amount_centimes, currency, "bank", name,
                            "AB123456", None, account or rib(), "06")


ribs = st.builds(rib, st.sampled_from(BANK_CODES), st.from_regex(r"[0-9]{3}", fullmatch=True),
                 st.from_regex(r"[0-9]{16}", fullmatch=True))
# Amounts up to one billion dirhams, in centimes: far above any transfer.
amounts = st.integers(min_value=1, max_value=100_000_000_000)
names = st.text(st.characters(codec="utf-8", categories=("L", "N", "Zs", "P")), min_size=1,
                max_size=60).filter(lambda n: n.strip())
references = st.from_regex(r"D[0-9A-Z]{14}", fullmatch=True)


@st.composite
def batches(draw, max_size: int = 40) -> list[OutboundTransfer]:
    refs = draw(st.lists(references, min_size=1, max_size=max_size, unique=True))
    return [OutboundTransfer(ref, draw(amounts), "MAD", "bank", draw(names),
                             "AB1", None, draw(ribs), "01")
            for ref in refs]
