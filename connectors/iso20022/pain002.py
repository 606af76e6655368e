"""Payment status reports from a bank: `pain.002.001.11`, read streamed into
one `StatusRecord` per transaction, and written (the bank simulator's side).

A status can sit at three levels. A transaction without its own TxSts takes
its PmtInf's status, or else the group's (a group RJCT rejects every
transaction listed under it). A group or PmtInf status with no transaction
listed at all gives one record with `reference=None`: it concerns every
transaction of the original message (or payment information), which only the
caller can enumerate (`original_msg_id`, `original_pmt_inf_id`).
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from connectors.base import InboundUpdate, PartnerStatus
from disbursement.iso20022.writing import DocumentWriter, Spec, iso_datetime
from disbursement.iso20022.xml import PAIN_002, MessageError, Node, quote, walk

_STATUS = re.compile(r"[A-Z]{4}", re.ASCII)
MAX105 = 105

# ISO external code set ExternalPaymentTransactionStatus1Code -> our vocabulary.
# Every "accepted so far" code means the bank holds the instruction; only
# ACSC/ACCC say the creditor's account was credited.
ISO_STATUSES: dict[str, PartnerStatus] = {
    **dict.fromkeys(("ACTC", "ACCP", "ACSP", "ACWC", "PDNG", "RCVD", "ACFC", "ACIS", "ACWP",
                     "PATC"),
                    PartnerStatus.RECEIVED),
    "ACSC": PartnerStatus.PAID,
    "ACCC": PartnerStatus.PAID,
    "RJCT": PartnerStatus.REJECTED,
    "CANC": PartnerStatus.CANCELLED,
}

# The reasons banks give most for a rejected credit transfer (ISO external
# code set ExternalStatusReason1Code), for when the file carries no AddtlInf.
REASON_TEXTS: dict[str, str] = {
    "AC01": "incorrect account number",
    "AC03": "invalid creditor account number",
    "AC04": "closed account number",
    "AC06": "blocked account",
    "AG01": "transaction forbidden on this type of account",
    "AM04": "insufficient funds",
    "AM05": "duplication",
    "BE01": "identification of end customer is not consistent with account number",
    "BE05": "unrecognised initiating party",
    "DUPL": "duplicate payment",
    "FF01": "invalid file format",
    "MD07": "end customer deceased",
    "MS02": "reason not specified, customer generated",
    "MS03": "reason not specified, agent generated",
    "RC01": "bank identifier incorrect",
}


def partner_status(iso_status: str) -> PartnerStatus | None:
    """Our word for an ISO transaction status; None for codes that say nothing
    definite about one transaction (PART: some of the group accepted)."""
    return ISO_STATUSES.get(iso_status)


@dataclass(frozen=True, slots=True)
class StatusRecord:
    reference: str | None          # OrgnlEndToEndId; None: applies to the whole message / PmtInf
    iso_status: str
    reason_code: str | None
    reason_text: str | None
    original_msg_id: str
    original_pmt_inf_id: str | None
    # where the status was given: "group" | "payment_information" | "transaction"
    level: str
    locator: str                   # element path in the report, for messages
    message_id: str                # the pain.002's own MsgId

    @property
    def partner_status(self) -> PartnerStatus | None:
        return partner_status(self.iso_status)

    def as_update(self) -> InboundUpdate | None:
        """The `InboundUpdate` for this record; None when it names no single
        transfer or its status says nothing definite."""
        status = self.partner_status
        if self.reference is None or status is None:
            return None
        reason = (self.reason_code if not self.reason_text
                  else f"{self.reason_code or ''} {self.reason_text}".strip())
        return InboundUpdate(self.reference, status,
                             event_id=f"pain002:{self.message_id}:{self.reference}",
                             reason=reason)


@dataclass
class _Level:
    status: str | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    locator: str = ""


_UNITS = frozenset({"GrpHdr", "OrgnlGrpInfAndSts", "OrgnlPmtInfAndSts/OrgnlPmtInfId",
                    "OrgnlPmtInfAndSts/PmtInfSts", "OrgnlPmtInfAndSts/StsRsnInf",
                    "OrgnlPmtInfAndSts/TxInfAndSts"})
_CONTAINERS = frozenset({"OrgnlPmtInfAndSts"})


def read_pain002(stream: IO[bytes]) -> Iterator[StatusRecord]:
    """Stream the records of a pain.002.001.11 report.

    Raises `MessageError` naming the element when the report is malformed,
    another message or version, or a transaction has no status at any level."""
    message_id = original_msg_id = ""
    group = _Level()
    pmt = _Level()
    pmt_inf_id: str | None = None
    pmt_transactions = 0
    saw_pmt_inf = False
    for event in walk(stream, PAIN_002, units=_UNITS, containers=_CONTAINERS):
        node = event.node
        if event.path == "GrpHdr":
            message_id = node.text("MsgId") or ""
        elif event.path == "OrgnlGrpInfAndSts":
            original_msg_id = node.text("OrgnlMsgId") or ""
            group = _Level(_status(node, "GrpSts"), *_reason(node), locator=node.where)
        elif event.path == "OrgnlPmtInfAndSts":
            if event.kind == "start":
                pmt, pmt_inf_id = _Level(locator=node.where), None
                pmt_transactions, saw_pmt_inf = 0, True
            elif pmt_transactions == 0 and (status := pmt.status or group.status):
                level = pmt if pmt.status else group
                yield StatusRecord(None, status, level.reason_code, level.reason_text,
                                   original_msg_id, pmt_inf_id,
                                   "payment_information" if pmt.status else "group",
                                   node.where, message_id)
        elif event.path == "OrgnlPmtInfAndSts/OrgnlPmtInfId":
            pmt_inf_id = node.text()
        elif event.path == "OrgnlPmtInfAndSts/PmtInfSts":
            pmt.status = _status(node, None)
        elif event.path == "OrgnlPmtInfAndSts/StsRsnInf":
            if pmt.reason_code is None and pmt.reason_text is None:
                pmt.reason_code, pmt.reason_text = _reason_of(node)
        else:
            pmt_transactions += 1
            yield _transaction(node, pmt, group, original_msg_id, pmt_inf_id, message_id)
    if not saw_pmt_inf and group.status:
        yield StatusRecord(None, group.status, group.reason_code, group.reason_text,
                           original_msg_id, None, "group", group.locator, message_id)


def _transaction(node: Node, pmt: _Level, group: _Level, original_msg_id: str,
                 pmt_inf_id: str | None, message_id: str) -> StatusRecord:
    reference = node.text("OrgnlEndToEndId")
    own = _status(node, "TxSts")
    if own:
        code, text = _reason(node)
        return StatusRecord(reference, own, code, text, original_msg_id, pmt_inf_id, "transaction",
                            node.where, message_id)
    for level, name in ((pmt, "payment_information"), (group, "group")):
        if level.status:
            return StatusRecord(reference, level.status, level.reason_code, level.reason_text,
                                original_msg_id, pmt_inf_id, name, node.where, message_id)
    raise MessageError(f"{node.where}/TxSts: missing, and neither PmtInfSts nor GrpSts "
                       "gives a status")


def _status(node: Node, path: str | None) -> str | None:
    text = node.text(path, required=False)
    if text is not None and _STATUS.fullmatch(text) is None:
        where = f"{node.where}/{path}" if path else node.where
        raise MessageError(f"{where}: {quote(text)} is not an ISO status code")
    return text


def _reason(node: Node) -> tuple[str | None, str | None]:
    for reason in node.children("StsRsnInf"):
        return _reason_of(reason)
    return None, None


def _reason_of(reason: Node) -> tuple[str | None, str | None]:
    code = reason.text("Rsn/Cd", required=False) or reason.text("Rsn/Prtry", required=False)
    texts = [t for info in reason.children("AddtlInf") if (t := info.text(required=False))]
    text = " ".join(texts) if texts else REASON_TEXTS.get(code or "")
    return code, text


# --- writing (the bank simulator's side) -----------------------------------

@dataclass(frozen=True, slots=True)
class TransactionStatus:
    reference: str
    iso_status: str | None           # None: inherits the PmtInf or group status
    reason_code: str | None = None
    reason_text: str | None = None


@dataclass(frozen=True)
class PaymentInformationStatus:
    original_pmt_inf_id: str
    iso_status: str | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    transactions: Iterable[TransactionStatus] = ()    # written as iterated: may be a generator


@dataclass(frozen=True)
class StatusReport:
    message_id: str
    created_at: datetime
    original_msg_id: str
    group_status: str | None = None
    group_reason_code: str | None = None
    group_reason_text: str | None = None
    payment_informations: Sequence[PaymentInformationStatus] = field(default_factory=tuple)
    original_msg_name: str = "pain.001.001.10"


def write_pain002(out: str | os.PathLike | IO[bytes], report: StatusReport) -> int:
    """Write `report` as a pain.002.001.11 to `out`; returns the number of
    transactions written."""
    written = 0
    with DocumentWriter(out, PAIN_002) as doc:
        doc.write(("GrpHdr", [("MsgId", report.message_id),
                              ("CreDtTm", iso_datetime(report.created_at))]))
        doc.write(("OrgnlGrpInfAndSts", [
            ("OrgnlMsgId", report.original_msg_id),
            ("OrgnlMsgNmId", report.original_msg_name),
            ("GrpSts", report.group_status),
            *_reason_spec(report.group_reason_code, report.group_reason_text),
        ]))
        for pmt in report.payment_informations:
            with doc.open("OrgnlPmtInfAndSts"):
                doc.write(("OrgnlPmtInfId", pmt.original_pmt_inf_id))
                doc.write(("PmtInfSts", pmt.iso_status))
                for spec in _reason_spec(pmt.reason_code, pmt.reason_text):
                    doc.write(spec)
                for tx in pmt.transactions:
                    doc.write(("TxInfAndSts", [("OrgnlEndToEndId", tx.reference),
                                               ("TxSts", tx.iso_status),
                                               *_reason_spec(tx.reason_code, tx.reason_text)]))
                    written += 1
    return written


def _reason_spec(code: str | None, text: str | None) -> list[Spec]:
    if code is None and text is None:
        return []
    return [("StsRsnInf", [("Rsn", [("Cd", code)] if code else None),
                           ("AddtlInf", text[:MAX105] if text else None)])]
