"""`python -m tests.chaos`: one chaos run; exit 0 only when nothing was lost,
nothing paid twice, nothing stuck and the ledger check passed."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.chaos.report import render
from tests.chaos.runner import Options, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--households", type=int, default=2_000)
    parser.add_argument("--faults", type=int, default=13)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, help="write the report there (RELIABILITY.md)")
    parser.add_argument("--work", type=Path, help="working directory (default: a temp dir, "
                                                  "removed after a run that passed)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args(argv)
    result = run(Options(args.households, args.faults, args.seed, args.report, args.work,
                         args.keep))
    text = render(result)
    print(text)
    if args.report:
        args.report.write_text(text)
    return 0 if result.verdict is not None and result.verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
