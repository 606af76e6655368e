"""Payment initiation to a bank: one `pain.001.001.10` file per batch and
partner bank, one PmtInf, one CdtTrfTxInf per transfer.

The file is streamed with `etree.xmlfile`; NbOfTxs and CtrlSum sit before the
transactions, so a first pass over the caller's sequence computes them and
checks every transfer (RIB, amount, currency, name) before a byte is written:
a bad transfer never leaves half a file behind.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO

from connectors.base import OutboundTransfer
from disbursement.domain.rib import bank_code, rib_problem
from disbursement.iso20022.writing import DocumentWriter, Spec, iso_datetime
from disbursement.iso20022.xml import (
    PAIN_001,
    MessageError,
    Node,
    format_centimes,
    parse_centimes,
    walk,
)

MAX35 = 35
MAX140 = 140
# Morocco's interbank clearing system (Système Interbancaire Marocain de
# Télécompensation): the RIB's bank code is the member id in it.
CLEARING_SYSTEM = "SIMT"
# The RIB is Morocco's basic bank account number: ISO's external code BBAN.
ACCOUNT_SCHEME = "BBAN"
# Characters XML 1.0 cannot carry at all (control characters, surrogates).
_NOT_XML = re.compile("[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


class InitiationError(ValueError):
    """Raised by `write_pain001` before anything is written when the header or
    a transfer cannot go into a pain.001 (invalid RIB, non-positive amount,
    mixed currencies, empty name, over-long identifier); the message names the
    transfer reference or the header field."""


@dataclass(frozen=True, slots=True)
class Debtor:
    """The programme's funding account at the partner bank."""
    name: str
    rib: str
    bic: str | None = None      # the bank's BIC when known; else its RIB bank code


@dataclass(frozen=True, slots=True)
class InitiationHeader:
    message_id: str                  # unique per file: the bank refuses a replayed MsgId
    payment_information_id: str      # our batch (and partner) identifier
    created_at: datetime
    requested_execution_date: date
    initiating_party: str
    debtor: Debtor


@dataclass(frozen=True, slots=True)
class InitiationTotals:
    count: int
    total_centimes: int
    currency: str | None


def totals(header: InitiationHeader, transfers: Sequence[OutboundTransfer]) -> InitiationTotals:
    """NbOfTxs and CtrlSum of the file, after checking every transfer.

    Raises `InitiationError` naming the first transfer (by reference) or
    header field that cannot be written."""
    _check_header(header)
    count = total = 0
    currency: str | None = None
    seen: set[str] = set()
    for transfer in transfers:
        ref = transfer.reference
        if not ref or len(ref) > MAX35 or _NOT_XML.search(ref):
            raise InitiationError(f"transfer {ref!r}: reference must be 1 to {MAX35} characters")
        if ref in seen:
            raise InitiationError(f"transfer {ref}: appears twice in the batch")
        seen.add(ref)
        problem = rib_problem(transfer.account)
        if problem:
            raise InitiationError(f"transfer {ref}: creditor account: {problem}")
        if type(transfer.amount_centimes) is not int or transfer.amount_centimes <= 0:
            raise InitiationError(f"transfer {ref}: amount {transfer.amount_centimes!r} "
                                  f"is not a positive number of centimes")
        if currency is not None and transfer.currency != currency:
            raise InitiationError(f"transfer {ref}: currency {transfer.currency} differs from "
                                  f"{currency}; one file carries one currency")
        currency = transfer.currency
        if not transfer.beneficiary_name.strip():
            raise InitiationError(f"transfer {ref}: beneficiary name is empty")
        if _NOT_XML.search(transfer.beneficiary_name):
            raise InitiationError(f"transfer {ref}: beneficiary name holds a control character")
        count += 1
        total += transfer.amount_centimes
    if count == 0:
        raise InitiationError("the batch has no transfers; a pain.001 needs at least one")
    return InitiationTotals(count, total, currency)


def write_pain001(out: str | os.PathLike | IO[bytes], header: InitiationHeader,
                  transfers: Sequence[OutboundTransfer]) -> InitiationTotals:
    """Write the pain.001.001.10 for `transfers` to `out` (a path or a binary
    stream) and return its totals.

    Raises `InitiationError` (see `totals`) before anything is written."""
    sums = totals(header, transfers)
    debtor = header.debtor
    with DocumentWriter(out, PAIN_001) as doc:
        doc.write(("GrpHdr", [
            ("MsgId", header.message_id),
            ("CreDtTm", iso_datetime(header.created_at)),
            ("NbOfTxs", str(sums.count)),
            ("CtrlSum", format_centimes(sums.total_centimes)),
            ("InitgPty", [("Nm", header.initiating_party[:MAX140])]),
        ]))
        with doc.open("PmtInf"):
            for spec in (
                ("PmtInfId", header.payment_information_id),
                ("PmtMtd", "TRF"),
                ("NbOfTxs", str(sums.count)),
                ("CtrlSum", format_centimes(sums.total_centimes)),
                ("ReqdExctnDt", [("Dt", header.requested_execution_date.isoformat())]),
                ("Dbtr", [("Nm", debtor.name[:MAX140])]),
                ("DbtrAcct", _account(debtor.rib)),
                ("DbtrAgt", _agent(debtor.rib, debtor.bic)),
            ):
                doc.write(spec)
            for transfer in transfers:
                doc.write(_transaction(transfer))
    return sums


def _transaction(transfer: OutboundTransfer) -> Spec:
    assert transfer.account is not None  # checked by `totals`
    return ("CdtTrfTxInf", [
        ("PmtId", [("EndToEndId", transfer.reference)]),
        ("Amt", [("InstdAmt", format_centimes(transfer.amount_centimes),
                  {"Ccy": transfer.currency})]),
        ("CdtrAgt", _agent(transfer.account, None)),
        ("Cdtr", [("Nm", transfer.beneficiary_name.strip()[:MAX140])]),
        ("CdtrAcct", _account(transfer.account)),
    ])


def _account(rib: str) -> list[Spec]:
    return [("Id", [("Othr", [("Id", rib), ("SchmeNm", [("Cd", ACCOUNT_SCHEME)])])])]


def _agent(rib: str, bic: str | None) -> list[Spec]:
    if bic:
        return [("FinInstnId", [("BICFI", bic)])]
    return [("FinInstnId", [("ClrSysMmbId", [("ClrSysId", [("Prtry", CLEARING_SYSTEM)]),
                                              ("MmbId", bank_code(rib))])])]


def _check_header(header: InitiationHeader) -> None:
    for name, value, limit in (("message_id", header.message_id, MAX35),
                               ("payment_information_id", header.payment_information_id, MAX35),
                               ("initiating_party", header.initiating_party, MAX140),
                               ("debtor.name", header.debtor.name, MAX140)):
        if not value or not value.strip() or len(value) > limit or _NOT_XML.search(value):
            raise InitiationError(f"header {name}: must be 1 to {limit} printable characters")
    problem = rib_problem(header.debtor.rib)
    if problem:
        raise InitiationError(f"header debtor.rib: {problem}")


# --- reading (the bank simulator's side) ------------------------------------

@dataclass(frozen=True, slots=True)
class InitiatedTransfer:
    reference: str                 # EndToEndId
    amount_centimes: int
    currency: str
    creditor_name: str | None
    creditor_account: str | None   # CdtrAcct/Id/Othr/Id or IBAN
    payment_information_id: str
    locator: str


@dataclass
class InitiationSummary:
    """Filled by `read_pain001` as it reads the group header and PmtInfs."""
    message_id: str | None = None
    declared_count: int | None = None
    declared_total_centimes: int | None = None
    payment_information_ids: list[str] = field(default_factory=list)
    count: int = 0
    total_centimes: int = 0


_UNITS = frozenset({"GrpHdr", "PmtInf/PmtInfId", "PmtInf/NbOfTxs", "PmtInf/CtrlSum",
                    "PmtInf/CdtTrfTxInf"})


def read_pain001(stream: IO[bytes], summary: InitiationSummary) -> Iterator[InitiatedTransfer]:
    """Stream the transactions of a pain.001.001.10, filling `summary`.

    Raises `MessageError` naming the element when the file is malformed, or
    when NbOfTxs / CtrlSum (group or PmtInf) disagree with the transactions."""
    pmt_id = ""
    pmt: dict[str, int | None] = {}
    for event in walk(stream, PAIN_001, units=_UNITS, containers=frozenset({"PmtInf"})):
        node = event.node
        if event.path == "GrpHdr":
            summary.message_id = node.text("MsgId")
            summary.declared_count = _count(node.require("NbOfTxs"))
            ctrl = node.child("CtrlSum")
            summary.declared_total_centimes = (None if ctrl is None
                                               else parse_centimes(ctrl.text() or "", ctrl.where))
        elif event.path == "PmtInf":
            if event.kind == "start":
                pmt = {"declared_count": None, "declared_total": None, "count": 0, "total": 0}
            else:
                _check_totals(node.where, pmt["declared_count"], pmt["declared_total"],
                              pmt["count"], pmt["total"])
        elif event.path == "PmtInf/PmtInfId":
            pmt_id = node.text() or ""
            summary.payment_information_ids.append(pmt_id)
        elif event.path == "PmtInf/NbOfTxs":
            pmt["declared_count"] = _count(node)
        elif event.path == "PmtInf/CtrlSum":
            pmt["declared_total"] = parse_centimes(node.text() or "", node.where)
        else:
            centimes, currency = node.amount("Amt/InstdAmt")
            account = node.child("CdtrAcct/Id/Othr/Id") or node.child("CdtrAcct/Id/IBAN")
            transfer = InitiatedTransfer(node.text("PmtId/EndToEndId") or "", centimes, currency,
                                         node.text("Cdtr/Nm", required=False),
                                         None if account is None else account.text(), pmt_id,
                                         node.where)
            pmt["count"] = (pmt["count"] or 0) + 1
            pmt["total"] = (pmt["total"] or 0) + centimes
            summary.count += 1
            summary.total_centimes += centimes
            yield transfer
    _check_totals("GrpHdr", summary.declared_count, summary.declared_total_centimes,
                  summary.count, summary.total_centimes)


def _count(node: Node) -> int:
    text = node.text() or ""
    if not text.isascii() or not text.isdigit():
        raise MessageError(f"{node.where}: {text!r} is not a count")
    return int(text)


def _check_totals(where: str, declared_count: int | None, declared_total: int | None,
                  count: int | None, total: int | None) -> None:
    if declared_count is not None and declared_count != count:
        raise MessageError(f"{where}/NbOfTxs: declares {declared_count} transactions, "
                           f"the file holds {count}")
    if declared_total is not None and declared_total != total:
        raise MessageError(f"{where}/CtrlSum: declares {format_centimes(declared_total)}, "
                           f"the transactions add up to {format_centimes(total or 0)}")
