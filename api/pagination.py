"""Pages: ``limit`` and ``offset`` in, the total and the next page's link out (no silent truncation).

The body stays a list; ``X-Total-Count`` says how many items match in all and ``Link: <...>;
rel="next"`` gives the next page while there is one.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

PAGED: dict[str, Any] = {
    "X-Total-Count": {"description": "Items that match, in all", "schema": {"type": "integer", "minimum": 0}},
    "Link": {
        "description": 'The next page, as <url>; rel="next" (absent on the last page)',
        "schema": {"type": "string"},
    },
}


def paged_response(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "headers": PAGED}}


def set_page(response: Response, request: Request, total: int, offset: int, returned: int) -> None:
    response.headers["X-Total-Count"] = str(total)
    if offset + returned < total and returned > 0:
        url = request.url.include_query_params(offset=offset + returned)
        target = url.path + (f"?{url.query}" if url.query else "")
        response.headers["Link"] = f'<{target}>; rel="next"'
