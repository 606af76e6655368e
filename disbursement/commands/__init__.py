"""CLI commands of each area, mounted on `disburse` by `disbursement.cli`."""
