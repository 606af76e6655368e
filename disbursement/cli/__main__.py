"""`python -m disbursement.cli`: the same as the `disburse` command."""
from disbursement.cli.main import main

main()
