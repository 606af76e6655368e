"""Finding our transfer reference in a partner's free text (an MT940 `:86:`
field, a camt `AddtlNtryInf` or unstructured remittance line), where other
software puts it among words and numbers of its own."""
from __future__ import annotations

import re

from disbursement.domain.references import is_valid_reference

# Our references: "D", then upper-case base-32 characters, the last one an
# ISO 7064 check character; at most 16 characters in all. Word boundaries keep
# a longer token from being cut down to a false match; the check character
# keeps a look-alike word from passing.
_CANDIDATE = re.compile(r"(?<![0-9A-Z])D[0-9A-Z]{13,15}(?![0-9A-Z])", re.ASCII)
# MT940 `:86:` structured subfields ("?20", "?21"...) glue a digit pair to the
# value that follows.
_SUBFIELD = re.compile(r"\?[0-9]{2}", re.ASCII)


def find_reference(text: str | None) -> str | None:
    """The first valid transfer reference in `text` (case kept: references
    are upper-case), or None."""
    if not text:
        return None
    # Subfields and lines as separate words first; then glued together, for a
    # reference the bank wrapped at its line or subfield width.
    spaced = _SUBFIELD.sub(" ", text).replace("\n", " ")
    glued = _SUBFIELD.sub("", text).replace("\r", "").replace("\n", "")
    for variant in (spaced, glued):
        for candidate in _CANDIDATE.findall(variant):
            if is_valid_reference(candidate):
                return candidate
    return None
