"""``/v1/events``: CloudEvents 1.0 from the outbox, as a server-sent event stream or as a page of JSON.

With ``Accept: text/event-stream`` the answer is a stream that stays open: each event is
sent as ``id: <seq>``, ``event: <type>``, ``data: <the CloudEvent in JSON>``; a client that
reconnects sends ``Last-Event-ID`` and resumes after it (as long as the outbox retains
it). Without, the answer is one page of events (``after``, ``limit``) and
``X-Next-After`` to continue from. Filters: ``type`` (prefixes, repeatable), ``cluster`` and
``namespace`` (repeatable).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.deps import ServiceDep
from intelligence.runtime.facade import ServiceFacade
from intelligence.storage.outbox import TYPES, StoredEvent, contiguous, matches

router = APIRouter(prefix="/v1/events", tags=["events"])

MAX_SEQ = 2**53 - 1
Text = Annotated[str, StringConstraints(max_length=253, pattern=r"^[^\x00-\x1F\x7F]*$")]
Texts = Annotated[list[Text], Query(max_length=50)]


class CloudEventOut(BaseModel):
    """A CloudEvents 1.0 event in its JSON format (structured mode)."""

    model_config = ConfigDict(extra="allow")

    specversion: str = Field(description="1.0")
    id: str = Field(description="Unique per source: what a receiver de-duplicates on")
    source: str
    type: str = Field(description=f"One of {', '.join(TYPES)}")
    subject: str
    time: datetime = Field(description="When it happened, on the service's clock (see icostimebasis)")
    datacontenttype: str
    icosseq: int = Field(description="Position in the stream: the SSE id, and what after= continues from")
    icoscluster: str | None = None
    icosnamespace: str | None = None
    icostimebasis: str = Field(description="simulated, replayed or real: what the times are")
    data: dict[str, Any]


class WebhookOut(BaseModel):
    name: str
    url: str = Field(description="The receiver (credentials masked)")
    cursor: int | None = Field(description="The last event handled for this subscriber")
    delivered: int
    attempts: int = Field(description="Failed attempts at the next event")
    due_at: datetime | None = Field(description="When the next attempt is due, after a failure (wall clock)")
    last_status: int | None
    last_error: str | None


def _filters(types: list[str], clusters: list[str], namespaces: list[str]) -> tuple[list[str], ...]:
    return [t for t in types if t], [c for c in clusters if c], [n for n in namespaces if n]


def _cloud(service: ServiceFacade, e: StoredEvent) -> dict[str, Any]:
    return e.cloudevent(service.event_source, service.event_extensions)


def _read(service: ServiceFacade, cursor: int, limit: int) -> tuple[list[StoredEvent], int]:
    """Released events after ``cursor`` (held at a young gap) and the new cursor."""
    rows = contiguous(cursor, service.events_after(cursor, limit), datetime.now(UTC), service.event_gap_seconds)
    return rows, (rows[-1].seq if rows else cursor)


async def _stream(
    request: Request, service: ServiceFacade, cursor: int, filters: tuple[list[str], ...]
) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"
    idle_since = time.monotonic()
    while not await request.is_disconnected():
        rows, cursor = await run_in_threadpool(_read, service, cursor, 500)
        sent = False
        for e in rows:
            if matches(e, *filters):
                body = json.dumps(_cloud(service, e), default=str, separators=(",", ":"))
                yield f"id: {e.seq}\nevent: {e.type}\ndata: {body}\n\n".encode()
                sent = True
        if sent:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since >= service.event_heartbeat_seconds:
            yield b": keep-alive\n\n"
            idle_since = time.monotonic()
        if len(rows) < 500:
            await asyncio.sleep(service.event_poll_seconds)


@router.get(
    "",
    response_model=list[CloudEventOut],
    summary="Events as CloudEvents 1.0: a server-sent event stream (Accept: text/event-stream) or a JSON page",
    responses={
        200: {
            "description": "A page of events (JSON), or the stream (text/event-stream)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "headers": {
                "X-Next-After": {
                    "description": "The after= that continues from this page (JSON only)",
                    "schema": {"type": "integer"},
                }
            },
        }
    },
)
async def events(
    request: Request,
    response: Response,
    service: ServiceDep,
    type: Texts = [],  # noqa: B006 - FastAPI copies defaults
    cluster: Texts = [],  # noqa: B006
    namespace: Texts = [],  # noqa: B006
    after: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Events after this position (default: stream: now; page: 0)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Events per page (JSON only)")] = 100,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> Any:
    filters = _filters(type, cluster, namespace)
    resume = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    if "text/event-stream" in request.headers.get("accept", ""):
        start = resume if resume is not None else after
        if start is None:
            start = await run_in_threadpool(service.latest_event_seq)
        return StreamingResponse(
            _stream(request, service, min(start, MAX_SEQ), filters),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    cursor = after if after is not None else 0
    out: list[dict[str, Any]] = []
    while True:
        rows, _ = await run_in_threadpool(_read, service, cursor, 500)
        for e in rows:
            cursor = e.seq
            if matches(e, *filters):
                out.append(_cloud(service, e))
                if len(out) == limit:
                    break
        if len(out) == limit or len(rows) < 500:
            break
    response.headers["X-Next-After"] = str(cursor)
    return out


@router.get("/webhooks", response_model=list[WebhookOut], summary="Each webhook subscriber's delivery state")
def webhooks(service: ServiceDep) -> list[WebhookOut]:
    return [WebhookOut(**w) for w in service.webhooks()]
