"""The text a cash beneficiary receives: one template per language, and the
mode saying which languages one message carries (`both`: Arabic then French,
while the registry has no language field). The templates come from
`config/sms_templates.toml`, read by `disbursement.configuration.sms_templates`."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

LANGUAGES = ("ar", "fr")
BOTH = "both"
MODES = (BOTH, *LANGUAGES)
# The fields a template may use; the configuration refuses any other.
FIELDS = frozenset({"amount", "point_name", "point_address", "pickup_from", "code", "reference"})


@dataclass(frozen=True)
class SmsTemplates:
    mode: str                      # one of MODES
    texts: Mapping[str, str]       # language -> template with {field} placeholders

    @property
    def languages(self) -> tuple[str, ...]:
        return LANGUAGES if self.mode == BOTH else (self.mode,)

    def render(self, fields: Mapping[str, str]) -> str:
        return "\n".join(self.texts[language].format(**fields) for language in self.languages)
