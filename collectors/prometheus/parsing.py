"""Prometheus' answers as data: range-query matrices to float arrays, PromQL templates, the library's error text.

Nothing downstream sees raw Prometheus JSON: values arrive as strings ("1.5", "NaN",
"+Inf") and leave as float64 arrays in :class:`SeriesBatch`es keyed by (cluster, signal,
workload labels). No I/O here; :mod:`collectors.prometheus.transport` does the HTTP.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import numpy as np
import orjson

from collectors.base import normalise
from collectors.errors import MalformedResponse, QueryRejected
from collectors.prometheus.specs import Signal
from intelligence.vocabulary import SeriesBatch, SeriesKey

MATRIX_PREFIX = b'{"status":"success","data":{"resultType":"matrix","result":['  # how a matrix body starts
_METRIC = b'{"metric":'
_VALUES = b'},"values":[['
_STATUS = re.compile(r"HTTP Status Code (\d{3})")


def render_query(template: str, selector: dict[str, str], window: str) -> str:
    """Fill ``{selector}`` (``,k="v"...``), ``{selector_bare}`` (``k="v",...``) and ``{window}``."""
    bare = ",".join(f'{k}="{v}"' for k, v in sorted(selector.items()))
    return template.format(selector=("," + bare) if bare else "", selector_bare=bare, window=window)


class RawMatrix:
    """A matrix response body, converted straight to float arrays without a Python object per sample.

    Prometheus and Thanos write compact JSON in a fixed shape:
    ``{"metric":{...},"values":[[t,"v"],...]}`` per series. The labels are parsed with orjson;
    the values segment becomes ``t,v,t,v...`` and numpy parses it in C ("NaN", "+Inf" included).
    A label value cannot contain the unescaped separators searched for, so the scan is exact.
    Iterating gives the plain parsed series, for any other consumer.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Any:
        return iter(orjson.loads(self.body)["data"]["result"])

    def series(self) -> Any:
        """Yields (metric labels, timestamps, values) per series that has float samples."""
        body = self.body
        pos = len(MATRIX_PREFIX) - 1
        while True:
            i = body.find(_METRIC, pos)
            if i < 0:
                return
            j = body.find(_VALUES, i)
            following = body.find(_METRIC, i + len(_METRIC))
            if j < 0 or (0 <= following < j):  # a series without float samples (native histograms)
                pos = i + len(_METRIC)
                continue
            metric = orjson.loads(body[i + len(_METRIC) : j + 1])
            k = body.find(b"]]", j)
            segment = body[j + len(_VALUES) - 1 : k + 1].translate(None, b'[]"')
            flat = np.fromstring(segment, dtype=np.float64, sep=",")
            if flat.size != segment.count(b",") + 1 or flat.size % 2:
                raise ValueError(f"unparseable values after {body[i : i + 120]!r}")
            yield metric, flat[0::2], flat[1::2]
            pos = k


def _pairs(result: Any) -> Any:
    """(metric, timestamps, values) per series of a parsed (list) matrix result."""
    for item in result:
        if isinstance(item, dict) and "values" not in item and "histograms" in item:
            continue  # native histograms only: no float samples
        try:
            metric, values = item["metric"], item["values"]
        except (KeyError, TypeError) as exc:
            raise ValueError(f"series without metric/values: {str(item)[:120]}") from exc
        n = len(values)
        ts = np.fromiter((v[0] for v in values), dtype=np.float64, count=n)
        vs = np.array([v[1] for v in values], dtype=np.float64)
        yield metric, ts, vs


def convert_matrix(cluster: str, signal: Signal, result: Any) -> list[SeriesBatch]:
    """Prometheus ``matrix`` result (parsed, or a :class:`RawMatrix`) -> batches keyed by (cluster, signal, labels).

    Values arrive as strings ("1.5", "NaN", "+Inf"); +-Inf becomes NaN (a missing value).
    Two result series that map to the same workload labels are an error in the signal's
    query (it must aggregate ``by`` them), reported rather than silently mixed.
    """
    if isinstance(result, RawMatrix):
        series = result.series()
    elif isinstance(result, list):
        series = _pairs(result)
    else:
        raise MalformedResponse(cluster, f"expected a matrix result, got {type(result).__name__}", signal.name)
    batches: dict[SeriesKey, SeriesBatch] = {}
    try:
        for metric, ts, vs in series:
            if ts.size == 0:
                continue
            labels = {name: metric[name] for name in signal.workload_labels if name in metric}
            key = SeriesKey.of(cluster, signal.name, labels)
            if key in batches:
                raise QueryRejected(
                    cluster,
                    f"two result series map to {key}: aggregate the query by {', '.join(signal.workload_labels)}",
                    signal.name,
                )
            batches[key] = normalise(key, ts, vs)
    except (ValueError, IndexError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
        raise MalformedResponse(cluster, f"unparseable result: {exc}", signal.name) from exc
    return list(batches.values())


def library_error(text: str) -> tuple[int, str]:
    """The HTTP status (0 if none) and Prometheus' own message, out of a ``PrometheusApiClientException``'s text.

    The library writes ``HTTP Status Code <status> (<body as bytes repr>)``; the message is
    shortened to 300 characters.

    >>> body = b'{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}'
    >>> library_error(f"HTTP Status Code 400 ({body!r})")
    (400, 'bad_data: 1:5: parse error: unclosed left parenthesis')
    >>> library_error("HTTP Status Code 502 (b'Bad Gateway')")
    (502, 'Bad Gateway')
    """
    match = _STATUS.search(text)
    status = int(match.group(1)) if match else 0
    return status, _error_body(text[match.end() :] if match else text)


def _error_body(text: str) -> str:
    """Prometheus' own error message out of the library's ``(b'{...}')``."""
    raw = text.strip().removeprefix("(").removesuffix(")")
    try:
        body = ast.literal_eval(raw)
        message = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    except (ValueError, SyntaxError):
        message = raw
    try:
        parsed = orjson.loads(message)
        if isinstance(parsed, dict) and "error" in parsed:
            message = f"{parsed.get('errorType', 'error')}: {parsed['error']}"
    except orjson.JSONDecodeError:
        pass
    return message.strip()[:300]
