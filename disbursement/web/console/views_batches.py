"""Batch review and the maker-checker decisions, plus live dispatch progress."""
from __future__ import annotations

from flask import flash, g, jsonify, redirect, render_template, request, url_for

from disbursement.domain.errors import DomainError
from disbursement.domain.states import BatchStatus, Role, TransferStatus
from disbursement.services.batches import approval as batches
from disbursement.services.batches import queries, review
from disbursement.services.officers import sign_in as officers
from disbursement.web.console.blueprint import bp
from disbursement.web.console.guard import (
    has_role,
    may_see_personal_data,
    not_found,
    services,
    signed_in,
)
from disbursement.web.errors import status_of

# Transfer states a dispatch has finished with, for the progress bar.
DISPATCHED = frozenset(TransferStatus) - {TransferStatus.PENDING_APPROVAL, TransferStatus.APPROVED,
                                          TransferStatus.QUEUED, TransferStatus.ON_HOLD}


def approval_refusal(view: review.BatchReview) -> str | None:
    """Why the signed-in officer may not approve this batch now (None: they may)."""
    batch, decisions = view.batch, view.decisions
    if batch.status != BatchStatus.SUBMITTED.value:
        return f"the batch is {batch.status}: only a submitted batch can be approved"
    if g.officer.username in (batch.created_by, batch.submitted_by):
        return "you made this batch: another approver must decide (maker-checker)"
    if not has_role(Role.APPROVER):
        return "approving needs the approver role"
    if any(d.username == g.officer.username and d.decision == "approve" for d in decisions):
        return "you already approved it: a second, different approver is needed"
    return None


def _render_review(batch_id: int, error: str | None = None, status: int = 200):
    svc = services()
    with svc.uow() as db:
        try:
            view = review.batch_review(db, svc.vault, batch_id, may_see_personal_data(g.officer))
        except review.ReviewNotFound:
            not_found(f"batch {batch_id}")
    return render_template("console/batch_review.html", r=view, b=view.batch, error=error,
                           refusal=approval_refusal(view),
                           approvals=sum(d.decision == "approve" for d in view.decisions),
                           totp=officers.has_totp(svc, g.officer.username)), status


@bp.get("/batches/<int:batch_id>")
@signed_in()
def batch_review(batch_id: int):
    return _render_review(batch_id)


def _decide(batch_id: int, action):
    try:
        action()
    except DomainError as exc:  # shown on the review page, with the API's status
        return _render_review(batch_id, error=str(exc), status=status_of(exc))
    return redirect(url_for("officer.batch_review", batch_id=batch_id), 303)


@bp.post("/batches/<int:batch_id>/submit")
@signed_in(Role.MAKER)
def batch_submit(batch_id: int):
    def submit():
        batches.submit(services(), batch_id, g.officer)
        flash(f"batch {batch_id} submitted for approval", "info")
    return _decide(batch_id, submit)


@bp.post("/batches/<int:batch_id>/approve")
@signed_in()
def batch_approve(batch_id: int):
    def approve():
        how = officers.confirm(services(), g.officer, request.form.get("confirmation", ""))
        batch = batches.approve(services(), batch_id, g.officer)
        flash(f"batch {batch_id} approved (confirmed by {how}); it is now {batch.status}", "info")
    return _decide(batch_id, approve)


@bp.post("/batches/<int:batch_id>/reject")
@signed_in()
def batch_reject(batch_id: int):
    def reject():
        reason = request.form.get("reason", "")
        if not reason.strip():
            raise batches.MissingReason("a rejection needs a reason")
        officers.confirm(services(), g.officer, request.form.get("confirmation", ""))
        batches.reject(services(), batch_id, g.officer, reason)
        flash(f"batch {batch_id} rejected", "info")
    return _decide(batch_id, reject)


@bp.post("/batches/<int:batch_id>/release")
@signed_in(Role.MAKER, Role.APPROVER)
def batch_release(batch_id: int):
    def release():
        outbox = batches.release(services(), batch_id, g.officer)
        flash(f"batch {batch_id} released: {len(outbox)} chunk(s) queued for dispatch", "info")
    return _decide(batch_id, release)


@bp.get("/batches/<int:batch_id>/progress")
@signed_in()
def batch_progress(batch_id: int):
    """Dispatch progress from transfer counts by state (polled by the page)."""
    with services().uow() as db:
        by_state = queries.transfers_by_status(db, batch_id)
    total = sum(by_state.values())
    done = sum(c for s, c in by_state.items() if s in DISPATCHED)
    return jsonify({"batch_id": batch_id, "total": total, "dispatched": done,
                    "by_state": by_state})
