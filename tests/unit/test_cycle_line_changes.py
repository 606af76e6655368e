"""Why an instruction's amount changed between two cycles, from its rule lines."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from disbursement.services.cycles.review import line_changes

CODES = st.sampled_from(["floor", "child_rank_1_young_or_schooled", "child_rank_2_unschooled",
                         "disabled", "orphan"])
LINES = st.dictionaries(CODES, st.integers(min_value=1, max_value=10**9)).map(
    lambda d: [[code, amount] for code, amount in d.items()])


def test_each_kind_of_change_is_named():
    before = [["child_rank_1_young_or_schooled", 25000], ["floor", 50000], ["orphan", 1000]]
    after = [["child_rank_1_young_or_schooled", 30000], ["disabled", 30000], ["orphan", 1000]]
    assert line_changes(before, after) == [
        "child_rank_1_young_or_schooled raised", "disabled added", "floor removed"]


@given(LINES, LINES)
def test_no_reason_exactly_when_the_lines_are_the_same(before, after):
    same = dict(map(tuple, before)) == dict(map(tuple, after))
    assert (line_changes(before, after) == []) == same
    assert len(line_changes(before, after)) == len(
        {c for c, _ in before} ^ {c for c, _ in after}
        | {c for c, a in before if c in dict(map(tuple, after))
           and dict(map(tuple, after))[c] != a})
