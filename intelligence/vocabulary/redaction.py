"""Credentials never leave in what the service shows: URLs and free text with the secrets masked.

A cluster URL may carry credentials (``http://admin:secret@thanos:9090``, or a token in its
query string). The URL keeps working for the requests the collector makes; everything that
is *shown* (the API, logs, ``last_error``, audit entries) goes through :func:`redact_url`
or :func:`redact_text`.

>>> redact_url("http://admin:secret@thanos:9090/api?x=1&token=abc")
'http://admin:***@thanos:9090/api?x=1&token=***'
>>> redact_url("https://thanos.example:443")
'https://thanos.example:443'
>>> redact_text("unreachable at http://u:p@h:1/x: refused")
'unreachable at http://u:***@h:1/x: refused'
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMS = frozenset(
    {"token", "access_token", "api_key", "apikey", "key", "password", "passwd", "secret", "sig", "signature", "auth"}
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and the values of secret-looking query parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split(":", 1)[0] + "://" + MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, MASK if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (for messages and log lines that may quote one)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)
