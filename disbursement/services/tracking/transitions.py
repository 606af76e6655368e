"""Transfer state changes: one conditional UPDATE plus one event row per
transfer moved, in the caller's transaction. Set-based, so a 50,000-transfer
batch moves in a handful of statements."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from disbursement.db.bulk import write_rows
from disbursement.db.models import Transfer, TransferEvent, utcnow
from disbursement.db.rowcount import rows_changed
from disbursement.domain.states import TransferStatus, allowed_sources, check_transition

IDS_PER_STATEMENT = 5_000
EVENT_COLUMNS = ["transfer_id", "at", "from_status", "to_status", "source", "actor", "detail"]


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), IDS_PER_STATEMENT):
        yield ids[i:i + IDS_PER_STATEMENT]


def move(session: Session, ids: Sequence[int], target: TransferStatus, *, source: str,
         actor: str, detail: str | None = None, values: dict | None = None,
         sources: Iterable[TransferStatus] | None = None) -> list[int]:
    """Moves the given transfers to `target` from whichever allowed state they
    are in; returns the ids that actually moved. Those in any other state are
    left alone (the caller decides whether that is a duplicate or a stale message)."""
    moved: list[int] = []
    if not ids:
        return moved
    now = utcnow()
    from_states = sorted(set(sources or allowed_sources(target)) & allowed_sources(target))
    for from_state in from_states:
        for chunk in _chunks(list(ids)):
            stmt = (update(Transfer)
                    .where(Transfer.id.in_(chunk), Transfer.status == from_state.value)
                    .values(status=target.value, updated_at=now, **(values or {}))
                    .returning(Transfer.id))
            got = list(session.execute(stmt, execution_options={"synchronize_session": False})
                       .scalars())
            if got:
                write_rows(session, TransferEvent.__table__, EVENT_COLUMNS,
                           [(tid, now, from_state.value, target.value, source, actor, detail)
                            for tid in got])
                moved.extend(got)
    return moved


def move_batch(session: Session, batch_id: int, source_state: TransferStatus,
               target: TransferStatus, *, source: str, actor: str,
               detail: str | None = None) -> int:
    """Moves every transfer of a batch in `source_state` to `target`: events are
    written with INSERT ... SELECT before the UPDATE, in the same transaction.
    The caller holds the batch row (conditional update on `batches`) so no other
    transaction moves the same transfers meanwhile."""
    check_transition(source_state, target)   # IllegalTransition: the state table decides
    params = {"batch_id": batch_id, "src": source_state.value, "dst": target.value,
              "source": source, "actor": actor, "detail": detail, "now": utcnow()}
    session.execute(text(
        "INSERT INTO transfer_events"
        " (transfer_id, at, from_status, to_status, source, actor, detail) "
        "SELECT id, :now, status, :dst, :source, :actor, :detail FROM transfers "
        "WHERE batch_id = :batch_id AND status = :src"), params)
    return rows_changed(session, text(
        "UPDATE transfers SET status = :dst, updated_at = :now "
        "WHERE batch_id = :batch_id AND status = :src"), params)


def statuses(session: Session, ids: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in _chunks(list(ids)):
        out.update(session.execute(select(Transfer.id, Transfer.status)
                                   .where(Transfer.id.in_(chunk))).all())
    return out
