"""A first, read-only console page: cycles, batches and transfer counts. It
shows no personal data; the full console (login, review, approve) is issue 5."""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from disbursement.db.models import Batch, Cycle, Transfer
from disbursement.domain.money import format_units
from disbursement.web.auth import services

bp = Blueprint("console", __name__)


@bp.get("/")
def index():
    with services().uow() as session:
        cycles = session.execute(select(Cycle).order_by(Cycle.id.desc()).limit(12)).scalars().all()
        batches = session.execute(select(Batch).order_by(Batch.id.desc()).limit(50)).scalars().all()
        by_status = session.execute(select(Transfer.status, func.count(),
                                           func.sum(Transfer.amount_centimes))
                                    .group_by(Transfer.status).order_by(Transfer.status)).all()
    return render_template("index.html", cycles=cycles, batches=batches, by_status=by_status,
                           mad=format_units)
