"""Issue 10, item 11, end to end: a tier-1 household planned for more than its
wallet may hold, or a number the wallet refuses, was approved and then refused
at dispatch. Now planning holds them, and a released cycle dispatched to the
partner simulators over HTTP meets no wallet-rule refusal at dispatch."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from disbursement.db.models import Household, PaymentInstruction, Transfer, TransferEvent
from disbursement.services.cycles import planning
from disbursement.services.dispatch.chunks import WALLET_RULES_ACTOR
from disbursement.services.registry import importing as registry
from tests.support.cycle import PERIOD, PROGRAM, release_all, write_households

pytestmark = pytest.mark.e2e

CASH = {"region_code": "06", "province_code": "061", "commune_code": "061001",
        "channel": "cash", "partner_code": "BARID", "account": "", "wallet_phone": "",
        "wallet_tier": ""}
WALLET = {**CASH, "channel": "wallet", "partner_code": "BARID"}


@pytest.mark.parametrize("svc", ["postgresql"], indirect=True)
def test_no_wallet_transfer_is_approved_that_the_wallet_refuses(live, officers, tmp_path):
    svc = live.svc
    path = write_households(tmp_path / "extract.csv", [
        {**WALLET, "wallet_phone": "0612345601", "wallet_tier": "1"},   # 500 MAD floor > 200
        {**WALLET, "wallet_phone": "0712345602", "wallet_tier": "1"},
        {**WALLET, "wallet_phone": "0612345603", "wallet_tier": "2"},   # number spoilt below
        {**WALLET, "wallet_phone": "0612345604", "wallet_tier": "2"},
        {**WALLET, "wallet_phone": "+212 7 12 34 56 05", "wallet_tier": "3"},
        CASH, CASH])
    with path.open("rb") as stream:
        registry.import_households(svc, stream, path.name, officers.maker)
    with svc.uow() as session:
        # A household imported before the import judged numbers as the wallet does.
        spoilt = session.execute(select(Household).where(
            Household.household_id == "RSU-00000003")).scalar_one()
        spoilt.pii = svc.vault.seal({**svc.vault.open(spoilt.pii), "wallet_phone": "0790123456"})
        session.commit()

    plan = planning.plan_cycle(svc, PROGRAM, PERIOD, officers.maker)
    release_all(svc, officers, plan)

    with svc.uow() as session:
        refused_at_dispatch = session.execute(select(func.count()).select_from(TransferEvent)
                                              .where(TransferEvent.actor == WALLET_RULES_ACTOR)
                                              ).scalar_one()
        by_channel = session.execute(select(Transfer.channel, Transfer.status, func.count())
                                     .group_by(Transfer.channel, Transfer.status)).all()
        held = session.execute(
            select(Household.household_id, PaymentInstruction.route_reason)
            .join(Household, Household.id == PaymentInstruction.household_pk)
            .where(PaymentInstruction.partner_code.is_(None))
            .order_by(Household.household_id)).all()
    assert refused_at_dispatch == 0
    assert sorted(by_channel) == [("cash", "sent", 2), ("wallet", "sent", 2)]
    assert [(hid, reason.split(": ")[1][:4]) for hid, reason in held] == [
        ("RSU-00000001", "WL04"), ("RSU-00000002", "WL04"), ("RSU-00000003", "WL01")]
    assert plan.held_by_wallet_rules == 3
