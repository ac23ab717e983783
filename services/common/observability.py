"""Prometheus metrics, JSON logs and the trace id that ties them together.

The trace id lives in the worker context (so nameko carries it through RPC
headers) and in a greenthread-local for the log formatter. Metric labels are
service, entrypoint, event type and outcome only: never personal values.
"""
import json
import logging
import re
import threading
import time
import uuid

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram

ENTRYPOINT_CALLS = Counter(
    "zhzx_entrypoint_calls_total", "Entrypoint calls by outcome",
    ["service", "entrypoint", "outcome"])
ENTRYPOINT_LATENCY = Histogram(
    "zhzx_entrypoint_latency_seconds", "Entrypoint latency by outcome",
    ["service", "entrypoint", "outcome"],
    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
EVENTS_PUBLISHED = Counter(
    "zhzx_events_published_total", "Events published by the outbox relay",
    ["service", "type"])
EVENTS_UNROUTABLE = Counter(
    "zhzx_events_unroutable_total",
    "Events no queue was bound for, parked in zhzx.unrouted", ["service", "type"])
EVENTS_CONSUMED = Counter(
    "zhzx_events_consumed_total",
    "Events handled, by outcome (ok, duplicate, retried, dead_lettered)",
    ["service", "type", "outcome"])
LINKED_PUBLISHED = Counter(
    "zhzx_linked_events_published_total", "Linked events handed to a link exchange",
    ["service", "exchange", "event_type"])
LINK_BLOCKED = Counter(
    "zhzx_link_blocked_total", "Linked events kept in the outbox: the link had no route",
    ["service", "exchange"])
LINK_BACKLOG = Gauge(
    "zhzx_link_backlog_events", "Linked events waiting in the outbox", ["service"])
LINKED_REFUSED = Counter(
    "zhzx_linked_events_refused_total",
    "Linked events dead-lettered unapplied: unsigned, badly signed, unknown origin, "
    "wrong direction, stale, or an action on an item never sent", ["service", "reason"])
LINK_LAG = Gauge(
    "zhzx_link_lag_seconds", "now − occurred_at of the last linked event received",
    ["service", "exchange"])
LINK_LAST = Gauge(
    "zhzx_link_last_received_timestamp_seconds",
    "When the last linked event from a platform was received and verified (unix time)",
    ["service", "exchange", "origin"])
OUTBOX_BACKLOG = Gauge(
    "zhzx_outbox_backlog", "Events written but not yet confirmed by the broker",
    ["service"])
OUTBOX_OLDEST = Gauge(
    "zhzx_outbox_oldest_seconds", "Age of the oldest event waiting in the outbox (0: none)",
    ["service"])
CALENDAR_UNCOVERED_YEARS = Gauge(
    "zhzx_calendar_uncovered_years",
    "Years within the next 12 months without public-holiday data in the working-day calendar",
    ["service"])
DEAD_LETTER_DEPTH = Gauge(
    "zhzx_dead_letter_depth", "Messages waiting in the dead-letter queue",
    ["service"])

_local = threading.local()  # green after eventlet.monkey_patch()
_TRACE_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_trace_id():
    return uuid.uuid4().hex


def clean_trace_id(value):
    return value if isinstance(value, str) and _TRACE_RE.match(value) else None


def set_trace_id(trace_id):
    _local.trace_id = trace_id


def current_trace_id():
    return getattr(_local, "trace_id", None)


_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_IDNUM = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def redact(text):
    """Mask mobile and resident-ID numbers: defence in depth for log lines."""
    return _IDNUM.sub("[ID]", _PHONE.sub("[PHONE]", text))


class JsonFormatter(logging.Formatter):
    """One JSON object per line with ``trace_id``; personal numbers redacted."""

    def __init__(self, service=None, **kw):
        super().__init__(**kw)
        self.service = service

    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
            "trace_id": getattr(record, "trace_id", None) or current_trace_id(),
        }
        if self.service:
            entry["service"] = self.service
        for key in ("event_type", "event_id", "entrypoint", "outcome", "aggregate_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        # a traceback only for errors: an expected failure (a 4xx, a database
        # briefly away) is one WARNING line, not a page of stack
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class MetricsPort(DependencyProvider):
    """``/metrics`` on a port of its own when ``METRICS_ADDRESS``
    (``host:port``) is set: in Kubernetes a NetworkPolicy lets only the
    monitoring namespace reach that port, and the API port then answers 404
    for ``/metrics``. Without it (a local run on loopback) the API port
    serves them. prometheus_client's own server: nothing to write."""

    def setup(self):
        self.address = self.container.config.get("METRICS_ADDRESS") or None
        self.server = None

    def start(self):
        if self.address:
            from prometheus_client import start_http_server
            host, port = self.address.rsplit(":", 1)
            self.server, _ = start_http_server(int(port), addr=host)

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def get_dependency(self, worker_ctx):
        return self.address


class Observed(DependencyProvider):
    """Times every worker and sets its trace id (from the caller or new)."""

    def setup(self):
        self.service = self.container.service_name
        self._started = {}

    def worker_setup(self, worker_ctx):
        trace_id = clean_trace_id(worker_ctx.data.get("trace_id")) or new_trace_id()
        worker_ctx.data["trace_id"] = trace_id
        set_trace_id(trace_id)
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        if started is None:
            return
        outcome = "ok"
        if exc_info is not None:
            status = getattr(exc_info[1], "status", 500)
            outcome = "rejected" if isinstance(status, int) and status < 500 else "error"
        name = worker_ctx.entrypoint.method_name
        ENTRYPOINT_CALLS.labels(self.service, name, outcome).inc()
        ENTRYPOINT_LATENCY.labels(self.service, name, outcome).observe(
            time.perf_counter() - started)

    def worker_teardown(self, worker_ctx):
        self._started.pop(worker_ctx, None)
        set_trace_id(None)
