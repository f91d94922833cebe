"""The transactional outbox: events written in the transaction of the change they report, read in order.

Every store that changes something a consumer must hear about calls :func:`write_event`
(or :func:`write_recommendation_event`, :func:`write_action_event`) *inside its own
transaction*: the event commits with the change or not at all, so a restart can neither
lose an event whose change was committed nor publish one whose change was rolled back.

The server-sent event stream and the webhook deliverer read events after a sequence
number (:meth:`Outbox.after`). Sequence numbers are handed out when a row is inserted, not
when it commits: on PostgreSQL a later number can become visible before an earlier one.
:class:`GapGuard` holds a reader back at such a gap for a short while (the earlier
transaction commits, or it rolled back and its number is never used).

The event types (``TYPES``) name what happened, in the reverse-DNS style of CloudEvents:
a recommendation opened or changed, an action enacted or failed, an anomaly above the
threshold, a cluster's health changed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from intelligence.storage.database import Database, aware, jsonable
from intelligence.storage.schema import actions, events, recommendations, webhook_cursors

PREFIX = "eu.icos.intelligence."
RECOMMENDATION_OPENED = PREFIX + "recommendation.opened"
RECOMMENDATION_CHANGED = PREFIX + "recommendation.changed"
ACTION_ENACTED = PREFIX + "action.enacted"
ACTION_FAILED = PREFIX + "action.failed"
ANOMALY_DETECTED = PREFIX + "anomaly.detected"
CLUSTER_HEALTH_CHANGED = PREFIX + "cluster.health.changed"
TYPES = (
    RECOMMENDATION_OPENED,
    RECOMMENDATION_CHANGED,
    ACTION_ENACTED,
    ACTION_FAILED,
    ANOMALY_DETECTED,
    CLUSTER_HEALTH_CHANGED,
)
_ACTION_TYPES = {"enacted": ACTION_ENACTED, "failed": ACTION_FAILED, "abandoned": ACTION_FAILED}


def write_event(
    conn: Connection,
    type: str,
    subject: str,
    data: Mapping[str, Any],
    at: datetime,
    cluster: str | None = None,
    namespace: str | None = None,
) -> str:
    """One event, inside the caller's transaction (it commits with the change it reports); returns its id.

    ``at`` is when it happened on the service's clock; ``cluster`` and ``namespace`` are what
    consumers filter on.
    """
    event_id = uuid.uuid4().hex
    conn.execute(
        events.insert().values(
            id=event_id,
            type=type,
            subject=subject[:512],
            cluster=cluster,
            namespace=namespace,
            time=at,
            recorded_at=datetime.now(UTC),
            data=jsonable(dict(data)),
        )
    )
    return event_id


def write_recommendation_event(
    conn: Connection, rec_id: int, at: datetime, detail: Mapping[str, Any] | None = None
) -> str | None:
    """The recommendation as it now is (read in the same transaction): ``opened`` when it is open and new,
    else ``changed``. ``detail`` (who decided, why) goes with it; when it names the recommendation this one
    ``superseded``, that one's ``changed`` event is written first."""
    superseded = (detail or {}).get("superseded")
    if superseded is not None:
        write_recommendation_event(conn, int(superseded), at, {"superseded_by": rec_id})
    row = conn.execute(sa.select(recommendations).where(recommendations.c.id == rec_id)).mappings().first()
    if row is None:
        return None
    data = {k: v for k, v in row.items() if k != "dedup_key"}
    data["target"] = {"cluster": row["cluster"], "namespace": row["namespace"], "workload": row["workload"]}
    if detail:
        data["detail"] = dict(detail)
    opened = row["status"] == "open" and aware(row["created_at"]) == aware(row["updated_at"])
    return write_event(
        conn,
        RECOMMENDATION_OPENED if opened else RECOMMENDATION_CHANGED,
        f"recommendations/{rec_id}",
        data,
        at,
        row["cluster"],
        row["namespace"],
    )


def write_action_event(conn: Connection, action_id: int, at: datetime) -> str | None:
    """The action as it now is, when it was enacted or failed (an intent or a retry is no event)."""
    row = conn.execute(sa.select(actions).where(actions.c.id == action_id)).mappings().first()
    if row is None or row["state"] not in _ACTION_TYPES:
        return None
    data = dict(row)
    data["target"] = {"cluster": row["cluster"], "namespace": row["namespace"], "workload": row["workload"]}
    return write_event(
        conn, _ACTION_TYPES[row["state"]], f"actions/{action_id}", data, at, row["cluster"], row["namespace"]
    )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    id: str
    type: str
    subject: str
    cluster: str | None
    namespace: str | None
    time: datetime
    recorded_at: datetime
    data: dict[str, Any]

    def cloudevent(self, source: str, extensions: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The event in the CloudEvents 1.0 JSON format (structured mode).

        Extension attributes: ``icosseq`` (the stream position), ``icoscluster`` and
        ``icosnamespace`` (what Knative Eventing triggers filter on), and ``extensions``.
        """
        out: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "icosseq": self.seq,
        }
        if self.cluster is not None:
            out["icoscluster"] = self.cluster
        if self.namespace is not None:
            out["icosnamespace"] = self.namespace
        out.update(extensions or {})
        out["data"] = self.data
        return out


def matches(
    e: StoredEvent, types: Sequence[str] = (), clusters: Sequence[str] = (), namespaces: Sequence[str] = ()
) -> bool:
    """An event a consumer asked for: its type starts with one of ``types``, and it is about one of the
    ``clusters`` and ``namespaces`` (each empty: any)."""
    if types and not any(e.type.startswith(t) for t in types):
        return False
    if clusters and e.cluster not in clusters:
        return False
    return not namespaces or e.namespace in namespaces


@dataclass(frozen=True, slots=True)
class SubscriberState:
    name: str
    cursor: int  # the last event seq handled (delivered, or not for this subscriber)
    delivered: int  # events accepted by the receiver, in all
    attempts: int  # failed attempts at the event after the cursor
    due_at: datetime | None  # the next attempt, after a failure
    last_status: int | None
    last_error: str | None
    leased_by: str | None
    leased_until: datetime | None


def _subscriber(r: Any) -> SubscriberState:
    return SubscriberState(
        r["name"],
        int(r["cursor"]),
        int(r["delivered"]),
        int(r["attempts"]),
        aware(r["due_at"]),
        r["last_status"],
        r["last_error"],
        r["leased_by"],
        aware(r["leased_until"]),
    )


def _event(r: Any) -> StoredEvent:
    return StoredEvent(
        int(r["seq"]),
        r["id"],
        r["type"],
        r["subject"],
        r["cluster"],
        r["namespace"],
        aware(r["time"]),
        aware(r["recorded_at"]),
        dict(r["data"]),
    )


class Outbox:
    """Reads of the outbox, the subscribers' cursors and leases, and retention."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine

    def write(
        self,
        items: Iterable[tuple[str, str, Mapping[str, Any], datetime, str | None, str | None]],
    ) -> int:
        """Events that report no other change of the database (anomalies, cluster health): one transaction."""
        n = 0
        with self.engine.begin() as conn:
            for type_, subject, data, at, cluster, namespace in items:
                write_event(conn, type_, subject, data, at, cluster, namespace)
                n += 1
        return n

    def after(self, seq: int, limit: int = 500) -> list[StoredEvent]:
        """Events after ``seq``, in order (every type: filter with :func:`matches` after the :class:`GapGuard`)."""
        query = sa.select(events).where(events.c.seq > seq).order_by(events.c.seq).limit(limit)
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(query).mappings()]

    def latest_seq(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0)

    def last_of_type(self, type_: str, limit: int = 1000) -> list[StoredEvent]:
        """The newest events of one type, newest first."""
        query = sa.select(events).where(events.c.type == type_).order_by(events.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(query).mappings()]

    def prune(self, older_than: datetime, below_seq: int | None) -> int:
        """Delete events recorded before ``older_than`` whose seq is at most ``below_seq`` (every subscriber has
        them; None: no subscriber waits)."""
        query = events.delete().where(events.c.recorded_at < older_than)
        if below_seq is not None:
            query = query.where(events.c.seq <= below_seq)
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount or 0)

    # -- webhook subscribers ----------------------------------------------------------------------

    def subscribers(self) -> list[SubscriberState]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(webhook_cursors).order_by(webhook_cursors.c.name)).mappings().all()
        return [_subscriber(r) for r in rows]

    def subscribe(self, name: str, now: datetime) -> SubscriberState:
        """The subscriber's state; a new one starts after the newest event (it gets what happens from now on)."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(webhook_cursors).where(webhook_cursors.c.name == name)).mappings().first()
            if row is None:
                latest = int(conn.execute(sa.select(sa.func.max(events.c.seq))).scalar() or 0)
                conn.execute(
                    webhook_cursors.insert().values(name=name, cursor=latest, delivered=0, attempts=0, updated_at=now)
                )
                row = conn.execute(sa.select(webhook_cursors).where(webhook_cursors.c.name == name)).mappings().one()
        return _subscriber(row)

    def lease(self, name: str, holder: str, now: datetime, seconds: float) -> SubscriberState | None:
        """Take (or renew) the right to deliver to ``name`` until ``now + seconds``; None: another holds it."""
        free = sa.or_(
            webhook_cursors.c.leased_by.is_(None),
            webhook_cursors.c.leased_by == holder,
            webhook_cursors.c.leased_until < now,
        )
        with self.engine.begin() as conn:
            taken = conn.execute(
                webhook_cursors.update()
                .where(webhook_cursors.c.name == name)
                .where(free)
                .values(leased_by=holder, leased_until=now + timedelta(seconds=seconds))
            )
            if not taken.rowcount:
                return None
            row = conn.execute(sa.select(webhook_cursors).where(webhook_cursors.c.name == name)).mappings().one()
        return _subscriber(row)

    def release(self, name: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                webhook_cursors.update()
                .where(webhook_cursors.c.name == name)
                .where(webhook_cursors.c.leased_by == holder)
                .values(leased_by=None, leased_until=None)
            )

    def advance(self, name: str, holder: str, seq: int, delivered: int, now: datetime, status: int | None) -> bool:
        """Move the cursor to ``seq`` (``delivered`` more events were accepted); False if the lease was lost."""
        with self.engine.begin() as conn:
            done = conn.execute(
                webhook_cursors.update()
                .where(webhook_cursors.c.name == name)
                .where(webhook_cursors.c.leased_by == holder)
                .where(webhook_cursors.c.cursor < seq)
                .values(
                    cursor=seq,
                    delivered=webhook_cursors.c.delivered + delivered,
                    attempts=0,
                    due_at=None,
                    last_status=status,
                    last_error=None,
                    updated_at=now,
                )
            )
            return bool(done.rowcount)

    def failed(self, name: str, holder: str, now: datetime, due_at: datetime, status: int | None, error: str) -> None:
        """An attempt failed: count it and say when the next one is due."""
        with self.engine.begin() as conn:
            conn.execute(
                webhook_cursors.update()
                .where(webhook_cursors.c.name == name)
                .where(webhook_cursors.c.leased_by == holder)
                .values(
                    attempts=webhook_cursors.c.attempts + 1,
                    due_at=due_at,
                    last_status=status,
                    last_error=error[:500],
                    updated_at=now,
                )
            )


def contiguous(cursor: int, rows: Sequence[StoredEvent], now: datetime, gap_seconds: float) -> list[StoredEvent]:
    """The rows up to the first gap in the sequence whose next row was recorded less than ``gap_seconds`` ago.

    The stateless form of :class:`GapGuard`, for readers that keep no memory between reads (a poller of the
    REST page, an event stream): a young gap may still be filled by a transaction that has not committed.
    """
    out: list[StoredEvent] = []
    expected = cursor + 1
    for row in rows:
        if row.seq > expected and (now - row.recorded_at).total_seconds() < gap_seconds:
            break
        out.append(row)
        expected = row.seq + 1
    return out


class GapGuard:
    """Holds a reader back at a gap in the sequence until it is filled or ``gap_seconds`` have passed.

    A gap is an insert not yet committed (PostgreSQL hands out sequence numbers at insert) or one
    rolled back (its number is never used). Waiting a few seconds lets the first kind commit; the
    second is passed over after that. On SQLite writers take turns, so numbers commit in order.
    """

    def __init__(self, gap_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.gap_seconds = gap_seconds
        self._monotonic = monotonic
        self._seen: dict[int, float] = {}  # the first missing seq -> when the gap was first seen

    def release(self, cursor: int, rows: Sequence[StoredEvent]) -> list[StoredEvent]:
        """The rows that may be handed on now: those up to the first gap that is still young."""
        out: list[StoredEvent] = []
        expected = cursor + 1
        for row in rows:
            if row.seq > expected:
                first = self._seen.setdefault(expected, self._monotonic())
                if self._monotonic() - first < self.gap_seconds:
                    break
                self._seen.pop(expected, None)
            out.append(row)
            expected = row.seq + 1
        if len(self._seen) > 1000:  # gaps that were filled: forget them
            self._seen = {k: v for k, v in self._seen.items() if k >= cursor}
        return out
