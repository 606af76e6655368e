"""Which ended attempts may be paid again as a new attempt, by rule.

A partner's rejection carries a reason whose text starts with its code
("R03 beneficiary deceased", "AC04 closed account", "MD07 end customer
deceased"); our own wallet rules speak the same way ("WL04 wallet tier 1
ceiling ..."). A program lists the codes it re-issues (`reissue_reasons` in
config/programs/*.toml). Some codes are never re-issued whatever a program
says: a deceased or duplicate beneficiary, an identity that does not match,
and a wallet-rule refusal (no partner can pay what the household's wallet may
not hold). Such a rejection is an officer's to decide, so asking to re-issue
it opens an exception (`NOT_REISSUABLE_EXCEPTION`).

A failed attempt (technical: the retries were spent, the partner never took
it) carries no partner's reason and may be re-issued when the program allows
re-issue at all.

Plain Python: no framework, no database.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from disbursement.domain.wallet import (
    CEILING_REFUSED,
    CURRENCY_REFUSED,
    NUMBER_REFUSED,
    TIER_REFUSED,
)

# The exception queue's type for a re-issue refused by rule.
NOT_REISSUABLE_EXCEPTION = "not_reissuable"
# A reason code: 3 or 4 upper-case letters or digits, starting with a letter
# (the file partners' "R03", ISO 20022's "AC04", our "WL04").
REASON_CODE = re.compile(r"[A-Z][A-Z0-9]{2,3}", re.ASCII)

# Never re-issued, whatever a program lists: code -> why, in an officer's words.
NEVER_REISSUABLE: dict[str, str] = {
    # beneficiary deceased
    "R03": "beneficiary deceased",
    "MD07": "beneficiary deceased",
    # duplicate beneficiary or payment
    "R04": "duplicate beneficiary",
    "AM05": "duplicate payment",
    "DUPL": "duplicate payment",
    # identity
    "R01": "beneficiary identity mismatch",
    "R02": "national id not valid",
    "RR01": "beneficiary identity mismatch",
    "BE01": "beneficiary identity inconsistent with the account",
    # our wallet rules (domain/wallet.py)
    NUMBER_REFUSED: "wallet rule: not a Moroccan mobile number",
    TIER_REFUSED: "wallet rule: unknown wallet tier",
    CURRENCY_REFUSED: "wallet rule: currency",
    CEILING_REFUSED: "wallet rule: above the wallet tier's ceiling",
}

REJECTED = "rejected"
FAILED = "failed"


def reason_code(status_reason: str | None) -> str | None:
    """The code a rejection reason starts with, or None when it starts with none."""
    if not status_reason:
        return None
    first = status_reason.split(maxsplit=1)[0] if status_reason.strip() else ""
    return first if REASON_CODE.fullmatch(first) else None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt is not re-issued; `for_officer` when an exception must
    be opened (the rejection needs a human decision, not a new attempt)."""
    reason: str
    code: str | None
    for_officer: bool


@dataclass(frozen=True)
class ReissuePolicy:
    program: str
    allowed: frozenset[str]           # reason codes the program re-issues

    def refusal(self, status: str, status_reason: str | None) -> Refusal | None:
        """None when an attempt that ended in `status` for `status_reason`
        may be re-issued; otherwise why not."""
        if status == FAILED:
            return None
        if status != REJECTED:
            return Refusal(f"transfer is {status}: only rejected or failed attempts are "
                           "re-issued", None, False)
        code = reason_code(status_reason)
        shown = status_reason or "no reason given"
        if code is None:
            return Refusal(f"rejection reason {shown!r} carries no reason code: an officer "
                           "decides", None, True)
        never = NEVER_REISSUABLE.get(code)
        if never is not None:
            return Refusal(f"rejection reason {code} ({never}) is never re-issued: "
                           f"an officer decides ({shown})", code, True)
        if code not in self.allowed:
            return Refusal(f"rejection reason {code} is not re-issued under program "
                           f"{self.program} (reissue_reasons: "
                           f"{', '.join(sorted(self.allowed)) or 'none'}): an officer decides",
                           code, True)
        return None


def never_reissuable(codes: Iterable[str]) -> list[str]:
    """The codes among `codes` that no program may re-issue."""
    return [code for code in codes if code in NEVER_REISSUABLE]
