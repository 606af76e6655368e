"""The chaos suite (`make chaos`): a cycle released while faults land, then
recovered the way README's Operations section says, and judged against the
partners' journals. `python -m tests.chaos --help`."""
