"""The one safe XML setup: hostile input is refused before it can expand or
reach the file system, wrong messages are named, schema violations are found."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from connectors.iso20022.pain002 import read_pain002
from disbursement.iso20022 import schemas
from disbursement.iso20022.xml import (
    CAMT_053,
    MessageError,
    format_centimes,
    message_type_of,
    parse_centimes,
    walk,
)

NS = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.11"

BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE Document [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<Document xmlns="{NS}"><CstmrPmtStsRpt><GrpHdr><MsgId>&lol9;</MsgId></GrpHdr>\
</CstmrPmtStsRpt></Document>
"""


def _external_entity(target: Path) -> str:
    return f"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY secret SYSTEM "file://{target}">]>
<Document xmlns="{NS}"><CstmrPmtStsRpt><GrpHdr><MsgId>&secret;</MsgId></GrpHdr>\
</CstmrPmtStsRpt></Document>
"""


def test_a_billion_laughs_file_is_refused() -> None:
    with pytest.raises(MessageError, match="DOCTYPE and entity declarations are refused"):
        list(read_pain002(io.BytesIO(BILLION_LAUGHS.encode())))


def test_an_external_entity_is_refused_and_the_local_file_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    with pytest.raises(MessageError) as refused:
        list(read_pain002(io.BytesIO(_external_entity(secret).encode())))
    assert "DOCTYPE" in str(refused.value) and "TOP-SECRET" not in str(refused.value)


def test_schema_validation_does_not_expand_an_external_entity(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    with pytest.raises(MessageError) as refused:
        schemas.validate(io.BytesIO(_external_entity(secret).encode()), "pain.002.001.11")
    assert "TOP-SECRET" not in str(refused.value)


def test_message_type_detection_refuses_a_doctype_too() -> None:
    with pytest.raises(MessageError, match="DOCTYPE"):
        message_type_of(io.BytesIO(BILLION_LAUGHS.encode()))


@pytest.mark.parametrize(("document", "message"), [
    (f'<Document xmlns="{NS}"><CstmrPmtStsRpt><GrpHdr><MsgId>X</MsgId>', "truncated"),
    ("", "not well-formed or truncated"),
    ("not xml at all", "line 1: not well-formed"),
    ('<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">'
     '<CstmrPmtStsRpt/></Document>',
     "message pain.002.001.10, expected pain.002.001.11"),
    ('<Document xmlns="urn:example:other"><CstmrPmtStsRpt/></Document>',
     "not an ISO 20022 namespace"),
    ('<Doc xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.11"/>', "root element is 'Doc'"),
    (f'<Document xmlns="{NS}"><BkToCstmrStmt/></Document>',
     "Document/BkToCstmrStmt: expected CstmrPmtStsRpt"),
])
def test_a_wrong_or_broken_document_gives_a_clear_error(document: str, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        list(read_pain002(io.BytesIO(document.encode())))


def test_an_unknown_message_type_is_named() -> None:
    other = b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.08"/>'
    with pytest.raises(MessageError,
                       match=re.escape("message camt.052.001.08; known: camt.053.001.08")):
        message_type_of(io.BytesIO(other))


def test_a_schema_violation_is_reported_naming_the_element() -> None:
    document = (f'<Document xmlns="{NS}">\n<CstmrPmtStsRpt>\n<GrpHdr><MsgId>M</MsgId></GrpHdr>\n'
                "</CstmrPmtStsRpt></Document>").encode()
    with pytest.raises(schemas.SchemaViolation, match=r"Element 'GrpHdr': Missing child .*CreDtTm"):
        schemas.validate(io.BytesIO(document))


@pytest.mark.parametrize(("text", "centimes"), [("0", 0), ("1", 100), ("1.5", 150),
                                                ("1234.56", 123456), ("7.10000", 710),
                                                ("99999999999.99", 9999999999999)])
def test_iso_amounts_become_exact_centimes(text: str, centimes: int) -> None:
    assert parse_centimes(text, "Amt") == centimes
    assert parse_centimes(format_centimes(centimes), "Amt") == centimes


@pytest.mark.parametrize(("text", "message"),
                         [("12.345", "has more than 2 decimals"), ("-1.00", "not an amount"),
                                               ("1e3", "not an amount"), ("", "not an amount"),
                                               ("١٢", "not an amount")])
def test_a_bad_amount_is_named(text: str, message: str) -> None:
    with pytest.raises(MessageError, match=f"Stmt\\[1\\]/Ntry\\[3\\]/Amt: .*{message}"):
        parse_centimes(text, "Stmt[1]/Ntry[3]/Amt")


def test_the_walker_frees_what_it_has_read() -> None:
    entries = "".join(f"<Ntry><Amt>{i}</Amt></Ntry>" for i in range(50))
    document = (f'<Document xmlns="{CAMT_053.namespace}"><BkToCstmrStmt><Stmt><Id>S</Id>{entries}'
                "</Stmt></BkToCstmrStmt></Document>").encode()
    seen = []
    for event in walk(io.BytesIO(document), CAMT_053, units=frozenset({"Stmt/Ntry"}),
                      containers=frozenset({"Stmt"})):
        if event.path == "Stmt/Ntry":
            seen.append(event.node.where)
            # Earlier entries are gone from the tree (the parser may have read
            # ahead): at most one emptied shell stays before the current one.
            previous = event.node.element.getprevious()
            assert previous is None or (len(previous) == 0 and previous.getprevious() is None)
    assert seen[:2] == ["Stmt[1]/Ntry[1]", "Stmt[1]/Ntry[2]"] and len(seen) == 50
