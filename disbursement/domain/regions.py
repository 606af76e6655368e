"""Morocco's regions and their provinces, as `config/regions.toml` describes
them (read by `disbursement.configuration.regions`): the registry checks a
household's region and province against them, the synthetic registry weights
its households by their population shares."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PER_MILLE = 1000
# The illustrative gazetteer and the synthetic registry number the communes of
# each province <province code><001..COMMUNES_PER_PROVINCE>.
COMMUNES_PER_PROVINCE = 40


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name_fr: str
    name_ar: str
    population_permille: int
    provinces: Mapping[str, str]  # code -> French name, in file order
