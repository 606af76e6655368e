"""`config/sms_templates.toml`: the beneficiary message, one template per
language and the mode choosing the languages, in one `SmsTemplates`. Each
template is checked here against the fields a message offers, so a typo in a
placeholder stops the start, not the first dispatch."""
from __future__ import annotations

import string
from pathlib import Path
from types import MappingProxyType

from disbursement.configuration.toml_tables import Table, read_toml
from disbursement.domain.sms import BOTH, FIELDS, MODES, SmsTemplates

SMS_TEMPLATES_FILE = "sms_templates.toml"


def load_sms_templates(config_dir: Path) -> SmsTemplates:
    table = read_toml(config_dir / SMS_TEMPLATES_FILE)
    mode = table.text("mode", BOTH)
    if mode not in MODES:
        raise table.error("mode", f"one of {', '.join(MODES)}", mode)
    templates = table.table("templates")
    texts = {language: _template(templates, language)
             for language in SmsTemplates(mode, {}).languages}
    return SmsTemplates(mode, MappingProxyType(texts))


def _template(templates: Table, language: str) -> str:
    text = templates.text(language)
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise templates.error(language, f"a template with balanced braces ({exc})", text) from None
    unknown = sorted(names - FIELDS)
    if unknown:
        known = ", ".join("{" + name + "}" for name in sorted(FIELDS))
        raise templates.error(language, f"placeholders among {known} (unknown: {unknown})",
                              text)
    return text
