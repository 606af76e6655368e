"""One registry row -> one `HouseholdRecord`, or the exact reasons it is refused.

Each message names the field and quotes the value so that the agent who fixes
the extract can find the cell without reading code. Values arrive as strings
(CSV) or as JSON scalars (JSON Lines, floats already parsed as Decimal by the
reader); both are accepted, floats never.
"""
from __future__ import annotations

import csv
import enum
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, TextIO

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validates,
    validates_schema,
)
from marshmallow.types import ErrorMessages

from disbursement.domain.regions import Region
from disbursement.domain.rib import (  # re-exported: the registry's callers import them here
    is_valid_rib,
)
from disbursement.domain.wallet import normalise_mobile
from disbursement.services.registry.reader import RawRowError

ROW_FIELD = "_row"  # the `field` of an error about the line as a whole


class Channel(enum.StrEnum):
    CASH = "cash"
    WALLET = "wallet"
    BANK = "bank"


COLUMNS: tuple[str, ...] = (
    "household_id", "cin", "head_name", "phone", "region_code", "province_code",
    "commune_code", "score", "children_0_5", "children_schooled_6_20",
    "children_unschooled_6_20", "disabled_children", "orphan", "flat_rate",
    "channel", "partner_code", "account", "wallet_phone", "wallet_tier",
)
_COLUMN_ORDER = {name: index for index, name in enumerate(COLUMNS)}
_CHILD_COUNTS = ("children_0_5", "children_schooled_6_20", "children_unschooled_6_20")


@dataclass(frozen=True, slots=True)
class HouseholdRecord:
    household_id: str
    cin: str
    head_name: str
    phone: str | None  # E.164, "+2126XXXXXXXX"
    region_code: str
    province_code: str
    commune_code: str
    score_micro: int  # socio-economic score x 10^6, exact
    children_0_5: int
    children_schooled_6_20: int
    children_unschooled_6_20: int
    disabled_children: int
    orphan: bool
    flat_rate: bool
    channel: Channel
    partner_code: str | None
    account: str | None  # 24-digit RIB, key checked
    wallet_phone: str | None  # E.164
    # Bank Al-Maghrib wallet tier (1-3); absent = the lowest (config/wallet.toml).
    wallet_tier: int | None = None

    @property
    def children(self) -> int:
        return self.children_0_5 + self.children_schooled_6_20 + self.children_unschooled_6_20


# --- field types -----------------------------------------------------------
# ASCII classes on purpose: `\d` would accept Arabic-Indic digits, and int()
# and Decimal() would then silently convert them.
HOUSEHOLD_ID = re.compile(r"[A-Za-z0-9-]{1,32}", re.ASCII)
CIN = re.compile(r"[A-Z]{1,2}[0-9]{1,6}", re.ASCII)
PROVINCE = re.compile(r"[0-9]{3}", re.ASCII)
COMMUNE = re.compile(r"[0-9]{1,10}", re.ASCII)
PARTNER = re.compile(r"[A-Z][A-Z0-9_]{1,15}", re.ASCII)
_DECIMAL = re.compile(r"-?[0-9]+(?:\.([0-9]+))?", re.ASCII)
_RIB = re.compile(r"[0-9]{24}", re.ASCII)
_COUNT = re.compile(r"[0-9]{1,9}", re.ASCII)

MOBILE_FORMS = ("(06/07 then 8 digits, or +2126/+2127 then 8 digits, in a range the "
                "numbering plan gives to mobiles)")
SCORE_DECIMALS = 6
SCORE_LIMIT = 100  # scores are 0 <= score < 100
MICRO_PER_UNIT = 10**SCORE_DECIMALS
HEAD_NAME_MAX_CHARS = 120
# No household has this many children in one age band: a larger number is a
# typing error that would otherwise turn into a large payment.
MAX_CHILDREN_PER_COUNT = 30
QUOTE_MAX_CHARS = 40
_FLAGS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def quote(value: Any) -> str:
    """The offending value as it appears in messages: "12AB", -1, true."""
    if isinstance(value, str):
        if len(value) > QUOTE_MAX_CHARS:
            value = value[:QUOTE_MAX_CHARS] + "…"
        return json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, (bool, int)):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return str(value)
    return f"a JSON {'object' if isinstance(value, dict) else 'array'}"


def _text(value: Any) -> str:
    # JSON numbers are accepted where CSV would carry digits; bool is an int
    # subclass and must not pass as one.
    if isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    raise ValidationError(f"must be text, got {quote(value)}")


class _Parsed(fields.Field):
    """A marshmallow field around a plain parse function (value -> typed value)."""

    # marshmallow declares this on Field as an instance attribute, so mypy refuses a ClassVar
    # here; marshmallow only reads it (merged per class in Field.__init__), never mutates it.
    default_error_messages: ErrorMessages = {  # noqa: RUF012
        "required": "is required", "null": "is required"}

    def __init__(self, parse: Callable[[Any], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parse = parse

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        return self.parse(value)


def _pattern(pattern: re.Pattern[str], describe: str, *,
             upper: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value)
        normal = text.upper() if upper else text
        if pattern.fullmatch(normal) is None:
            raise ValidationError(f"{quote(text)} is not {describe}")
        return normal
    return parse


def _person_name(value: Any) -> str:
    # NFC so that the same Arabic or accented name typed on two keyboards
    # compares equal; runs of spaces are noise from the extract.
    name = " ".join(unicodedata.normalize("NFC", _text(value)).split())
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in name):
        raise ValidationError(f"{quote(name)} contains a control character")
    if len(name) > HEAD_NAME_MAX_CHARS:
        raise ValidationError(f"must be at most {HEAD_NAME_MAX_CHARS} characters, got {len(name)}")
    if not any(char.isalpha() for char in name):
        raise ValidationError(f"{quote(name)} contains no letter")
    return name


def _mobile_phone(value: Any) -> str:
    # The wallet partner's own judge (domain/wallet.py), which dispatch applies
    # too: a number accepted here is never refused there.
    text = _text(value)
    number = normalise_mobile(text)
    if number is None:
        raise ValidationError(f"{quote(text)} is not a Moroccan mobile number {MOBILE_FORMS}")
    return number


def _score_micro(value: Any) -> int:
    text = _text(value)
    match = _DECIMAL.fullmatch(text)
    if match is None:
        comma_decimal = _DECIMAL.fullmatch(text.replace(",", ".", 1))
        hint = ' (use "." as the decimal separator)' if comma_decimal else ""
        raise ValidationError(f"{quote(text)} is not a decimal number{hint}")
    if match.group(1) is not None and len(match.group(1)) > SCORE_DECIMALS:
        raise ValidationError(f"{quote(text)} has more than {SCORE_DECIMALS} decimals")
    score = Decimal(text)
    if not 0 <= score < SCORE_LIMIT:
        raise ValidationError(f"{quote(text)} is out of range (0 <= score < {SCORE_LIMIT})")
    return int(score * MICRO_PER_UNIT)  # exact: at most 8 significant digits


def _count(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and _COUNT.fullmatch(value):
        count = int(value)
    else:
        count = -1
    if count < 0:
        raise ValidationError(f"must be a non-negative integer, got {quote(value)}")
    if count > MAX_CHILDREN_PER_COUNT:
        raise ValidationError(f"must be at most {MAX_CHILDREN_PER_COUNT}, got {quote(value)}")
    return count


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, str)) and str(value).lower() in _FLAGS:
        return _FLAGS[str(value).lower()]
    raise ValidationError(f"must be one of 0/1/true/false/yes/no, got {quote(value)}")


def _channel(value: Any) -> Channel:
    text = _text(value)
    try:
        return Channel(text.lower())
    except ValueError:
        allowed = ", ".join(member.value for member in Channel)
        raise ValidationError(f"must be one of {allowed}, got {quote(text)}") from None


WALLET_TIERS = ("1", "2", "3")


def _wallet_tier(value: Any) -> int:
    text = str(value).strip()
    if text not in WALLET_TIERS:
        raise ValidationError(f"must be a wallet tier 1, 2 or 3, got {quote(value)}")
    return int(text)


def _rib(value: Any) -> str:
    # RIBs are printed in groups ("007 780 0001234567890123 45").
    text = _text(value)
    rib = text.replace(" ", "")
    if _RIB.fullmatch(rib) is None:
        raise ValidationError(f"{quote(text)} is not a RIB (24 digits: bank, city, account, key)")
    if not is_valid_rib(rib):
        raise ValidationError("RIB check digits do not match")
    return rib


class HouseholdSchema(Schema):
    """Validates one raw row. Build one per file (it holds the regions)."""

    class Meta:
        unknown = RAISE

    household_id = _Parsed(_pattern(HOUSEHOLD_ID, 'a household id (1-32 letters, digits or "-")'),
                           required=True)
    cin = _Parsed(_pattern(CIN, "a national ID card number (1-2 letters then 1-6 digits)",
                           upper=True),
                  required=True)
    head_name = _Parsed(_person_name, required=True)
    phone = _Parsed(_mobile_phone, load_default=None)
    region_code = _Parsed(_text, required=True)
    province_code = _Parsed(_pattern(PROVINCE, "a province code (3 digits)"), required=True)
    commune_code = _Parsed(_pattern(COMMUNE, "a commune code (1-10 digits)"), required=True)
    score = _Parsed(_score_micro, required=True, attribute="score_micro")
    children_0_5 = _Parsed(_count, required=True)
    children_schooled_6_20 = _Parsed(_count, required=True)
    children_unschooled_6_20 = _Parsed(_count, required=True)
    disabled_children = _Parsed(_count, required=True)
    orphan = _Parsed(_flag, required=True)
    flat_rate = _Parsed(_flag, required=True)
    channel = _Parsed(_channel, required=True)
    partner_code = _Parsed(_pattern(
        PARTNER, 'a partner code (2-16 letters, digits or "_", starting with a letter)',
        upper=True),
        load_default=None)
    account = _Parsed(_rib, load_default=None)
    wallet_phone = _Parsed(_mobile_phone, load_default=None)
    wallet_tier = _Parsed(_wallet_tier, load_default=None)

    def __init__(self, regions: Mapping[str, Region], **kwargs: Any) -> None:
        # marshmallow 4 dropped Schema.context; the regions travel on the instance.
        super().__init__(**kwargs)
        self.regions = regions

    @pre_load
    def _blank_is_absent(self, data: Any, **kwargs: Any) -> Any:
        # CSV cannot say "absent" other than with an empty cell; JSON may say
        # null. Both mean "not given", so required/optional rules apply alike.
        if not isinstance(data, dict):
            return data
        cleaned = {}
        for key, value in data.items():
            if key in _COLUMN_ORDER and _blank(value):
                continue
            cleaned[key] = value.strip() if isinstance(value, str) else value
        return cleaned

    @validates("region_code")
    def _known_region(self, value: str, **kwargs: Any) -> None:
        if value not in self.regions:
            raise ValidationError(f"unknown region {quote(value)}")

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _cross_field_rules(self, data: dict[str, Any], original: dict[str, Any],
                           **kwargs: Any) -> None:
        # Runs even when other fields failed, so one pass reports every
        # problem of the row; each rule only looks at fields that were valid.
        errors: dict[str, str] = {}
        region = self.regions.get(data.get("region_code", ""))
        province = data.get("province_code")
        if region is not None and province is not None and province not in region.provinces:
            errors["province_code"] = (
                f"province {quote(province)} is not in region {quote(region.code)} "
                f"({region.name_fr})")
        if "disabled_children" in data and all(name in data for name in _CHILD_COUNTS):
            children = sum(data[name] for name in _CHILD_COUNTS)
            if data["disabled_children"] > children:
                errors["disabled_children"] = (
                    f"{data['disabled_children']} exceeds the number of children ({children})")
        channel = data.get("channel")
        # Judged on the raw row: a given but invalid value has its own message.
        if channel is Channel.BANK and _blank(original.get("account")):
            errors["account"] = "is required when channel is bank"
        if channel is Channel.WALLET and _blank(original.get("wallet_phone")):
            errors["wallet_phone"] = "is required when channel is wallet"
        if errors:
            raise ValidationError(errors)

    @post_load
    def _record(self, data: dict[str, Any], **kwargs: Any) -> HouseholdRecord:
        return HouseholdRecord(**data)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class RowOk(NamedTuple):
    line: int
    record: HouseholdRecord


class RowError(NamedTuple):
    line: int
    household_id: str | None
    errors: list[tuple[str, str]]  # (field, message), in column order


RowOutcome = RowOk | RowError


def format_error(field: str, message: str) -> str:
    """('cin', '"12AB" is not ...') -> 'cin: "12AB" is not ...'"""
    return f"{field}: {message}"


def validate_row(schema: HouseholdSchema, line: int,
                 raw: Mapping[str, Any] | RawRowError) -> RowOutcome:
    if isinstance(raw, RawRowError):
        return RowError(line, raw.household_id, [(ROW_FIELD, raw.message)])
    try:
        return RowOk(line, schema.load(raw))
    except ValidationError as exc:
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        return RowError(line, valid.get("household_id"), _flatten(exc.messages))


def _flatten(messages: Any) -> list[tuple[str, str]]:
    if not isinstance(messages, dict):
        return [(ROW_FIELD, str(message)) for message in messages]
    errors = []
    for field in sorted(messages, key=lambda name: (_COLUMN_ORDER.get(name, len(COLUMNS)), name)):
        if field not in _COLUMN_ORDER and field != "_schema":
            errors.append((field, f"unknown column {quote(field)}"))
            continue
        found = messages[field]
        for message in [found] if isinstance(found, str) else found:
            errors.append((ROW_FIELD if field == "_schema" else field, str(message)))
    return errors


def validate_rows(
    rows: Iterable[tuple[int, Mapping[str, Any] | RawRowError]], regions: Mapping[str, Region]
) -> Iterator[RowOutcome]:
    """Validate a stream of raw rows, also refusing a household id seen earlier
    in the same file (the second and later occurrences are the errors)."""
    schema = HouseholdSchema(regions)
    # 8-byte blake2b digest of each id -> line of first sighting, to keep less
    # than the ids themselves. At 4M rows this is still ~300 MB by estimate
    # (~450 MB measured on CPython 3.11: dict slot, bytes key and int per id);
    # a later version should move the check into the database staging table
    # (a unique index). A digest collision (~1 in 2 million files of 4M rows)
    # would report a false duplicate, never hide a real one.
    first_seen: dict[bytes, int] = {}
    for line, raw in rows:
        outcome = validate_row(schema, line, raw)
        household_id = (outcome.record.household_id if isinstance(outcome, RowOk)
                        else outcome.household_id)
        if household_id is not None:
            key = hashlib.blake2b(household_id.encode(), digest_size=8).digest()
            first = first_seen.setdefault(key, line)
            if first != line:
                duplicate = ("household_id", f"duplicate household id {quote(household_id)}, "
                                             f"first seen on line {first}")
                errors = [] if isinstance(outcome, RowOk) else outcome.errors
                outcome = RowError(line, household_id, [duplicate, *errors])
        yield outcome


ERROR_REPORT_HEADER = ["line", "household_id", "field", "message"]
_SPREADSHEET_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def write_error_report(outcomes: Iterable[RowOutcome], stream: TextIO) -> int:
    """Write one CSV line per field error; returns the number of refused rows.

    The report is opened in spreadsheets by programme staff, and column names
    come from the uploaded file: cells that a spreadsheet would run as a
    formula are defused with a leading apostrophe.
    """
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(ERROR_REPORT_HEADER)
    refused = 0
    for outcome in outcomes:
        if isinstance(outcome, RowOk):
            continue
        refused += 1
        for field, message in outcome.errors:
            writer.writerow([outcome.line, _cell(outcome.household_id or ""), _cell(field),
                             _cell(message)])
    return refused


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_SPREADSHEET_FORMULA_STARTS) else text
