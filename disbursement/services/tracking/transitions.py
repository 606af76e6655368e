"""Transfer state changes: one conditional UPDATE plus one event row per
transfer moved, in the caller's transaction. Set-based, so a 50,000-transfer
batch moves in a handful of statements.

Concurrent changes serialise: `move` first locks the transfers' rows (in id
order, so two movers never deadlock), reads the state each is in, and only
then updates, each row from the state it was read in. Two confirmations for
one transfer (`available` and `paid` at the same instant), or the expiry job
racing a `paid`, so end in the furthest valid state, each event recorded
once, whichever commits first.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from disbursement.db.bulk import write_rows
from disbursement.db.models import Transfer, TransferEvent, utcnow
from disbursement.db.rowcount import rows_changed
from disbursement.domain.states import (
    TRANSITIONS,
    TransferStatus,
    check_transition,
    partner_path,
)

IDS_PER_STATEMENT = 5_000
EVENT_COLUMNS = ["transfer_id", "at", "from_status", "to_status", "source", "actor", "detail"]


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(ids), IDS_PER_STATEMENT):
        yield ids[i:i + IDS_PER_STATEMENT]


@dataclass(frozen=True, slots=True)
class Locked:
    """A transfer's row, locked until the caller's transaction ends."""
    id: int
    status: TransferStatus
    partner_status: str | None


def lock(session: Session, ids: Iterable[int]) -> dict[int, Locked]:
    """Locks the transfers' rows (FOR UPDATE, in id order) and reads their
    states. SQLite has no row locks: there the conditional UPDATE in `move`
    is the guard (one writer at a time)."""
    out: dict[int, Locked] = {}
    for chunk in _chunks(sorted(set(ids))):
        rows = session.execute(
            select(Transfer.id, Transfer.status, Transfer.partner_status)
            .where(Transfer.id.in_(chunk)).order_by(Transfer.id).with_for_update())
        out.update({row.id: Locked(row.id, TransferStatus(row.status), row.partner_status)
                    for row in rows})
    return out


def move(session: Session, ids: Sequence[int], target: TransferStatus, *, source: str,
         actor: str, detail: str | None = None, values: dict | None = None,
         sources: Iterable[TransferStatus] | None = None,
         partner_truth: bool = False) -> list[int]:
    """Moves the given transfers to `target` from whichever allowed state they
    are in (only from `sources`, when given); returns the ids that moved.
    Those in any other state are left alone (the caller decides whether that
    is a duplicate or a stale message).

    With `partner_truth` (the partner says the transfer is at `target`), a
    transfer behind is taken along `states.partner_path`, one event per step.
    """
    if not ids:
        return []
    only = frozenset(sources) if sources is not None else None
    groups: dict[tuple[TransferStatus, tuple[TransferStatus, ...]], list[int]] = {}
    for row in lock(session, ids).values():
        if only is not None and row.status not in only:
            continue
        path: tuple[TransferStatus, ...] = ()
        if target in TRANSITIONS[row.status]:
            path = (target,)
        elif partner_truth:
            path = partner_path(row.status, target)
        if path:
            groups.setdefault((row.status, path), []).append(row.id)
    now = utcnow()
    moved: list[int] = []
    for (from_state, path), group in sorted(groups.items()):
        for chunk in _chunks(group):
            stmt = (update(Transfer)
                    .where(Transfer.id.in_(chunk), Transfer.status == from_state.value)
                    .values(status=target.value, updated_at=now, **(values or {}))
                    .returning(Transfer.id))
            got = list(session.execute(stmt, execution_options={"synchronize_session": False})
                       .scalars())
            if not got:
                continue
            hops = list(zip((from_state, *path[:-1]), path, strict=True))
            write_rows(session, TransferEvent.__table__, EVENT_COLUMNS,
                       [(tid, now, a.value, b.value, source, actor,
                         detail if b == target else _on_the_way(detail, target))
                        for tid in got for a, b in hops])
            moved.extend(got)
    return moved


def _on_the_way(detail: str | None, target: TransferStatus) -> str:
    return f"{detail or 'moved'}: passed on the way to {target.value}"[:300]


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
