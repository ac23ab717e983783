"""Roll-up to the parent platform (三级联动, upward): a county's figures
kept current at its city by linked events.

Sending: ``StatisticsRollup(kind, compute)`` recomputes this year's figures
every ``ROLLUP_SECONDS`` (default 30) and, when they changed, stores them on
the ``rollups`` aggregate ``<kind>:<year>`` with a linked
``statistics.rolled_up`` event for the parent — through the outbox, so a cut
link only delays it. Only a county with a ``PARENT_ORG`` sends (a city
reports to the province through the provincial adapter).

Receiving: ``Receiver`` keeps the newest figures per county and year
(``seq`` order: an older snapshot never overwrites a newer one).
"""
import hashlib
import json
import logging
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from marshmallow import fields, validate
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from .config import Identity
from .events import Payload, Registry
from .inbox import idempotent
from .lease import LEASES, Lease, holder_id
from .linkage import UP, linked_handler
from .mongo import connect, database_name, keep_latest
from .outbox import Aggregates, Change, OutboxRelay
from .rpc import answers_only

log = logging.getLogger(__name__)

ROLLUPS = "rollups"           # this platform's own snapshots (an outbox collection)
RECEIVED = "linked_rollups"   # the snapshots of the platforms below


EVENTS = Registry("rollup")


class RolledUpFigures(Payload):
    kind = fields.String(required=True, validate=validate.OneOf(("proposals", "liaison")))
    year = fields.Integer(required=True)
    org_name = fields.String(required=True)
    figures = fields.Dict(required=True, metadata={"description": (
        "as GET /api/v1/proposals/statistics (without `table`) or GET /api/v1/liaison/statistics")})


EVENTS.define("statistics.rolled_up", RolledUpFigures, "本年度提案或联络工作统计（有变化时）报市政协",
              aggregate="statistics", via=UP)


def digest(figures):
    return hashlib.sha256(json.dumps(figures, sort_keys=True, ensure_ascii=False,
                                     default=str).encode()).hexdigest()


class StatisticsRollup(DependencyProvider):
    """``compute(db, year)`` returns the figures of ``kind`` for ``year``."""

    def __init__(self, kind, compute):
        self.kind, self.compute = kind, compute

    def setup(self):
        config = self.container.config
        self.identity = Identity.from_config(config)
        self.interval = float(config.get("ROLLUP_SECONDS", 30))
        self.zone = ZoneInfo(config.get("TIMEZONE", "Asia/Shanghai"))
        self._client = connect(config)
        self._db = self._client[database_name(config, self.container.service_name)]
        self._stop = threading.Event()
        self._gt = None
        self.lease = Lease(self._db[LEASES], f"rollup.{self.kind}", holder_id(),
                           float(config.get("LEASE_SECONDS", 15)),
                           service=self.container.service_name)

    def start(self):
        if self.identity.uplink:
            self._gt = self.container.spawn_managed_thread(self._run)

    def stop(self):
        self._stop.set()
        if self._gt is not None:
            self._gt.wait()
        self.lease.release()
        self._client.close()

    def kill(self):
        self._stop.set()
        if self._gt is not None:
            self._gt.kill()

    def get_dependency(self, worker_ctx):
        return self

    def _run(self):
        """Every ``interval``, in the replica that holds the roll-up's lease
        (renewed more often than it expires, so one replica keeps it)."""
        last = time.monotonic()
        while not self._stop.wait(min(self.interval, self.lease.seconds / 3)):
            try:
                if not self.lease.keep() or time.monotonic() - last < self.interval:
                    continue
                last = time.monotonic()
                self.roll()
            except Exception as exc:  # database down: the next round tries again
                log.warning("statistics roll-up of %s failed (%s)", self.kind,
                            type(exc).__name__)

    def roll(self, year=None):
        """Send this year's figures if they changed; True when sent."""
        parent = self.identity.uplink
        if not parent:
            return False
        year = year or datetime.now(self.zone).year
        figures = self.compute(self._db, year)
        new = digest(figures)
        aggregate_id = f"{self.kind}:{year}"
        aggregates = Aggregates(self._db[ROLLUPS])
        doc = self._db[ROLLUPS].find_one({"_id": aggregate_id}, {"digest": 1, "seq": 1})
        if doc is not None and doc.get("digest") == new:
            return False
        seq = doc["seq"] if doc else 0
        body = {"kind": self.kind, "year": year, "org_name": self.identity.org_name,
                "figures": figures}
        event = Change(self.identity.org_code, actor="system:rollup").linked(
            "statistics.rolled_up", aggregate_id, seq + 1, body, to=parent, via=UP)
        fields = {"kind": self.kind, "year": year, "digest": new}
        if doc is None:
            aggregates.create(dict(fields, _id=aggregate_id), [event])
        else:
            aggregates.change(aggregate_id, seq, fields, [event])
        # written in this thread, not a worker: no worker's end wakes the relay
        for extension in self.container.extensions:
            if isinstance(extension, OutboxRelay):
                extension.wake()
        return True


class Receiver:
    """Mixin for a parent's service: keeps each county's ``rollup_kind``
    figures (set by the service) in ``linked_rollups``; the service's
    ``figures_rollup`` (a ``StatisticsRollup``) computes its own."""

    rollup_kind = None

    @linked_handler(UP, "statistics.rolled_up")
    @idempotent("{service}.on_statistics_rolled_up")
    def on_statistics_rolled_up(self, event):
        p = event["payload"]
        if p.get("kind") != self.rollup_kind:
            return  # another service's figures
        keep_latest(self.db[RECEIVED], f"{event['origin']}:{p['year']}", event["seq"], {
            "org": event["origin"], "org_name": p.get("org_name"), "year": p["year"],
            "figures": p["figures"], "as_of": event["occurred_at"]})

    @rpc
    @answers_only("provincial")
    def yearly_figures(self, year):
        """This platform's own figures of ``rollup_kind`` for ``year`` and each
        linked county's latest, for the provincial adapter's yearly report."""
        return {"own": self.figures_rollup.compute(self.db, year),
                "counties": self.county_figures(year)}

    def county_figures(self, year):
        """Each linked county's latest figures for ``year`` (None if none yet)."""
        got = {d["org"]: d for d in self.db[RECEIVED].find({"year": year})}
        orgs = self.identity.child_names
        for org, d in got.items():
            orgs.setdefault(org, d.get("org_name") or org)
        return [{"org": org, "org_name": name, "year": year,
                 "as_of": (got.get(org) or {}).get("as_of"),
                 "figures": (got.get(org) or {}).get("figures")}
                for org, name in sorted(orgs.items())]
