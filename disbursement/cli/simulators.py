"""`disburse simulator ...`: the partner simulators, separate processes that
speak each partner's real protocol, for demos and end-to-end tests."""
from __future__ import annotations

import click

from connectors.simulators.iso20022 import iso20022_command
from connectors.simulators.rest import rest_command
from connectors.simulators.sftp import sftp_command
from connectors.simulators.sms import sms_command
from connectors.simulators.wallet import wallet_command


@click.group()
def simulator() -> None:
    """Partner simulators (separate processes speaking the real protocol)."""


simulator.add_command(rest_command, "rest")
simulator.add_command(sftp_command, "sftp")
simulator.add_command(wallet_command, "wallet")
simulator.add_command(sms_command, "sms")
simulator.add_command(iso20022_command, "iso20022")
