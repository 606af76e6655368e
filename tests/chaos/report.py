"""The chaos run's report: printed, and written to RELIABILITY.md by the full run."""
from __future__ import annotations

from collections import Counter

from tests.chaos.runner import Run, at
from tests.chaos.verdict import markdown


def render(result: Run) -> str:
    options, verdict = result.options, result.verdict
    outcome = "PASSED" if verdict is not None and verdict.ok else "FAILED"
    lines = [
        "# Reliability", "",
        f"Written by `make chaos` (`python -m tests.chaos --households {options.households} "
        f"--faults {options.faults} --seed {options.seed}`) on {at()}: {outcome}.", "",
        "A monthly cycle planned, approved and released on this machine's own PostgreSQL and "
        "Redis, gunicorn with 2 workers, two `disburse worker` RQ workers and three REST "
        "partner simulators keeping journals, while faults land at seeded random times; then "
        "the operator's recovery, a wait until quiet, and our database compared with each "
        "partner's journal.", "",
        f"Households {options.households:,}; instructions {result.instructions:,} in "
        f"{result.batches} batches; releases retried after a fault: {result.release_retries}.",
        "", "## Faults", "", "| kind | count |", "|---|---:|"]
    for kind, count in sorted(Counter(f["kind"] for f in result.faults).items()):
        lines.append(f"| {kind} | {count} |")
    lines += ["", "| # | at (s) | took (s) | kind | what happened |", "|---:|---:|---:|---|---|"]
    for fault in result.faults:
        note = fault["note"].replace("|", "/")
        lines.append(f"| {fault['n']} | {fault['at']} | {fault['seconds']} | {fault['kind']} | "
                     f"{note} |")
    if result.replay_answers:
        lines += ["", "Answers to the replayed signed callbacks, by HTTP status: "
                  + ", ".join(f"{k}: {v}" for k, v in sorted(result.replay_answers.items()))
                  + "."]
    lines += ["", "## Durations", "", "| phase | seconds |", "|---|---:|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in result.phases.items()]
    restarts = {k: v for k, v in result.restarts.items() if v}
    lines += ["", "## Recovery", "",
              *[f"- {step}" for step in result.recovery],
              f"- quiet (no pending outbox item, no undelivered callback, nothing open at the "
              f"partners): {'yes' if result.quiet else 'NO (timed out)'}",
              f"- process restarts: {restarts or 'none'}",
              f"- processes a killed one left running at the end (e.g. an RQ worker's "
              f"scheduler child): {result.orphans or 'none'}",
              "", "## Verdict", ""]
    lines += markdown(verdict) if verdict is not None else ["No verdict: the run stopped early."]
    return "\n".join(lines) + "\n"
