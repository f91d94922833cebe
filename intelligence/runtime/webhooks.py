"""Webhooks: each subscriber gets the outbox's events as signed CloudEvents, in order, each once.

Delivery follows each subscriber's cursor in the database (``webhook_cursors``): the event
after the cursor is POSTed; the cursor moves past it only when the receiver accepts it (any
2xx). A failure is retried after a delay that doubles (with jitter) up to the subscriber's
maximum, honouring ``Retry-After``; later events wait behind it, so order is kept. A
restart resumes at the cursor: nothing is lost. The one case in which a receiver sees an
event twice is a crash between its 2xx and the cursor's commit; every event carries an id
(``webhook-id``, the CloudEvents ``id``) to de-duplicate on. Replicas lease a subscriber
before delivering, so two never deliver the same event.

Signatures follow the Standard Webhooks scheme: ``webhook-signature: v1,<base64 HMAC-SHA256>``
over ``"{webhook-id}.{webhook-timestamp}.{body}"`` with the subscriber's secret (the bytes of
its secret file; a ``whsec_`` prefix marks a base64 key), ``webhook-timestamp`` in Unix
seconds so that a receiver can refuse old (replayed) deliveries. :func:`verify` checks one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from intelligence.storage.outbox import GapGuard, Outbox, StoredEvent, matches
from intelligence.vocabulary import redact_text, redact_url

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    name: str
    url: str
    secret_file: Path
    types: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    timeout_seconds: float = 5.0
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class Response:
    status: int | None  # None: no answer (connection refused, timeout)
    error: str = ""
    retry_after: float | None = None


Post = Callable[[str, bytes, Mapping[str, str], float], Response]


def _key(secret: str) -> bytes:
    secret = secret.strip()
    return base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value for one delivery."""
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance: float = 300.0) -> bool:
    """A receiver's check: the signature is right and the timestamp within ``tolerance`` seconds of ``now``."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, timestamp = lower["webhook-id"], int(lower["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1]
    offered = [s.split(",", 1)[1] for s in lower.get("webhook-signature", "").split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


class RequestsPost:
    """The HTTP of deliveries: one keep-alive session, redirects not followed (a receiver answers itself)."""

    def __init__(self) -> None:
        self.session = requests.Session()

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        try:
            r = self.session.post(url, data=body, headers=dict(headers), timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return Response(None, redact_text(f"{type(exc).__name__}: {exc}"))
        retry_after = None
        if r.status_code in (429, 503):
            try:
                retry_after = float(r.headers.get("Retry-After", ""))
            except ValueError:
                retry_after = None
        return Response(r.status_code, "" if r.ok else f"HTTP {r.status_code}", retry_after)

    def close(self) -> None:
        self.session.close()


@dataclass
class WebhookDeliverer:
    """Delivers the outbox to every subscriber: :meth:`run_once` is one pass; :meth:`start` runs it on a thread
    every ``poll_seconds`` (sooner after :meth:`wake`)."""

    outbox: Outbox
    subscribers: Sequence[WebhookSpec]
    source: str
    extensions: Mapping[str, Any] = field(default_factory=dict)
    poll_seconds: float = 0.5
    gap_seconds: float = 5.0
    batch: int = 100  # events per subscriber per pass, at most
    post: Post = field(default_factory=RequestsPost)
    wall: Callable[[], float] = time.time
    rng: random.Random = field(default_factory=random.Random)
    holder: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    _guards: dict[str, GapGuard] = field(default_factory=dict, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def run_once(self) -> int:
        """One pass over every subscriber; returns the events accepted."""
        accepted = 0
        for spec in self.subscribers:
            try:
                accepted += self._deliver(spec)
            except Exception:
                log.exception("webhook %s: delivery pass failed", spec.name)
        return accepted

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    def _delay(self, spec: WebhookSpec, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, spec.max_backoff_seconds)
        base = min(spec.backoff_seconds * 2 ** max(attempts - 1, 0), spec.max_backoff_seconds)
        return base * (0.5 + self.rng.random() / 2)  # jitter: receivers that come back are not stampeded

    def _deliver(self, spec: WebhookSpec) -> int:
        now = self._now()
        self.outbox.subscribe(spec.name, now)
        state = self.outbox.lease(spec.name, self.holder, now, max(30.0, 3 * spec.timeout_seconds))
        if state is None:
            return 0  # another replica delivers to this subscriber
        if state.due_at is not None and state.due_at > now:
            return 0
        guard = self._guards.setdefault(spec.name, GapGuard(self.gap_seconds))
        rows = guard.release(state.cursor, self.outbox.after(state.cursor, self.batch))
        cursor, skipped, accepted, attempts = state.cursor, state.cursor, 0, state.attempts
        for row in rows:
            if not matches(row, spec.types, spec.clusters, spec.namespaces):
                skipped = row.seq
                continue
            response = self._send(spec, row)
            now = self._now()
            if response.status is not None and 200 <= response.status < 300:
                self.outbox.advance(spec.name, self.holder, row.seq, 1, now, response.status)
                cursor = skipped = row.seq
                accepted += 1
                attempts = 0
                continue
            attempts += 1
            delay = self._delay(spec, attempts, response.retry_after)
            if skipped > cursor:
                self.outbox.advance(spec.name, self.holder, skipped, 0, now, None)
            self.outbox.failed(
                spec.name, self.holder, now, now + timedelta(seconds=delay), response.status, response.error
            )
            log.warning(
                "webhook %s: event %s not accepted (%s, attempt %d); next try in %.1fs",
                spec.name,
                row.id,
                response.error or response.status,
                attempts,
                delay,
            )
            return accepted
        if skipped > cursor:
            self.outbox.advance(spec.name, self.holder, skipped, 0, self._now(), None)
        return accepted

    def _send(self, spec: WebhookSpec, row: StoredEvent) -> Response:
        body = json.dumps(row.cloudevent(self.source, self.extensions), separators=(",", ":")).encode()
        try:
            secret = spec.secret_file.read_text()
        except OSError as exc:
            return Response(None, f"cannot read the secret file {spec.secret_file}: {exc.strerror}")
        timestamp = int(self.wall())
        headers = {
            "Content-Type": CONTENT_TYPE,
            "webhook-id": row.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, row.id, timestamp, body),
            "User-Agent": "icos-intelligence",
        }
        return self.post(spec.url, body, headers, spec.timeout_seconds)

    def status(self) -> list[dict[str, Any]]:
        """Each subscriber's cursor and last failure (credentials in its URL masked)."""
        known = {s.name: s for s in self.outbox.subscribers()}
        out = []
        for spec in self.subscribers:
            s = known.get(spec.name)
            out.append(
                {
                    "name": spec.name,
                    "url": redact_url(spec.url),
                    "cursor": s.cursor if s else None,
                    "delivered": s.delivered if s else 0,
                    "attempts": s.attempts if s else 0,
                    "due_at": s.due_at if s else None,
                    "last_status": s.last_status if s else None,
                    "last_error": s.last_error if s else None,
                }
            )
        return out

    def oldest_pending(self) -> int | None:
        """The lowest cursor among the subscribers: events after it are still to be delivered to someone."""
        cursors = [s.cursor for s in self.outbox.subscribers() if s.name in {w.name for w in self.subscribers}]
        return min(cursors) if cursors else None

    # -- the thread ------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        if not self.subscribers or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the delivery in progress, then give the subscribers' leases back."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        for spec in self.subscribers:
            try:
                self.outbox.release(spec.name, self.holder)
            except Exception:
                log.debug("webhook %s: lease not released", spec.name, exc_info=True)
        close = getattr(self.post, "close", None)
        if close is not None:
            close()
