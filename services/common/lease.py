"""One active worker per platform for each background duty, however many
replicas run: a lease in the service's own database, with a fencing token.

A duty (the outbox relay, the notify dispatcher, a scan, a timer) runs only
in the replica that holds its lease. The lease is one document in
``leases``: ``{_id: duty, holder, token, expires_at}``.

- **Acquire.** A replica takes a missing or expired lease with a
  compare-and-set on the current ``(holder, token)``, raising ``token`` by
  one: two contenders cannot both win, and every new holder has a larger
  token than all before it.
- **Renew.** The holder extends ``expires_at`` with a compare-and-set on its
  own ``(holder, token)``; when that fails someone took the lease over and
  this replica stops at once.
- **Fencing.** The holder acts only while its *local* deadline has not
  passed: the moment it sent its last successful renewal (a monotonic clock)
  plus ``margin`` × the lease time. A holder that was paused (a long GC, a
  stopped VM, a network partition) finds its deadline passed when it
  resumes, and must renew — which fails once another replica took over
  (its token moved on) — before it acts again. Work is done in batches
  shorter than the remaining time, checking ``valid()`` between them.

Clocks: ``expires_at`` is written with the holder's wall clock and compared
with the contender's, so replicas' clocks must agree to well within the
margin (NTP, as every Kubernetes node has); the fencing deadline uses the
local monotonic clock only.
"""
import functools
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta

from nameko.extensions import DependencyProvider
from prometheus_client import Gauge
from pymongo.errors import DuplicateKeyError

from .mongo import connect, database_name

log = logging.getLogger(__name__)

LEASES = "leases"
HELD = Gauge("zhzx_lease_held", "1 while this replica holds the duty's lease",
             ["service", "duty"])
TOKEN = Gauge("zhzx_lease_token", "The fencing token of the duty's lease as this replica "
                                  "last saw it", ["service", "duty"])


def _iso(moment):
    """Stored as ISO 8601 text (UTC), which compares in time order."""
    return moment.isoformat(timespec="milliseconds")


def holder_id():
    """This replica, as leases name it: host (the pod), process, a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The lease of ``duty`` in ``collection`` for ``holder``."""

    def __init__(self, collection, duty, holder, seconds=15.0, margin=0.8,
                 clock=datetime.utcnow, monotonic=time.monotonic, service=""):
        self.collection, self.duty, self.holder = collection, duty, holder
        self.service = service   # the metrics' label: services may share a process
        self.seconds, self.margin = float(seconds), float(margin)
        self.clock, self.monotonic = clock, monotonic
        self.token = None      # while held
        self.deadline = 0.0    # monotonic: act only before it
        # the keeper and the duty itself may renew at the same moment (two
        # green threads): one renewal at a time, or the slower one's
        # compare-and-set fails on the other's and the holder drops its own lease
        self._lock = threading.RLock()

    def valid(self):
        """True while this replica may act on the duty."""
        return self.token is not None and self.monotonic() < self.deadline

    def keep(self):
        """True when this replica may act now: held with at least half the
        window left, or renewed (or acquired) just now."""
        if self.token is not None and \
                self.monotonic() < self.deadline - self.seconds * self.margin / 2:
            return True
        return self.hold() is not None

    def hold(self):
        """Acquire or renew; the fencing token while held, else None."""
        with self._lock:
            return self._hold_now()

    def _hold_now(self):
        started = self.monotonic()
        now = self.clock()
        expires = _iso(now + timedelta(seconds=self.seconds))
        try:
            token = self._hold(_iso(now), expires)
        except Exception as exc:   # the database away: not held (fail safe)
            log.warning("lease %s not renewed (%s: %s)", self.duty, type(exc).__name__, exc)
            token = None
        if token is None:
            if self.token is not None:
                log.info("lease %s lost by %s", self.duty, self.holder)
            self.token, self.deadline = None, 0.0
            HELD.labels(self.service, self.duty).set(0)
            return None
        if self.token != token:
            log.info("lease %s taken by %s (token %s)", self.duty, self.holder, token)
        self.token, self.deadline = token, started + self.seconds * self.margin
        HELD.labels(self.service, self.duty).set(1)
        TOKEN.labels(self.service, self.duty).set(token)
        return token

    def _hold(self, now, expires):
        doc = self.collection.find_one({"_id": self.duty})
        if doc is None:
            try:
                self.collection.insert_one({"_id": self.duty, "holder": self.holder,
                                            "token": 1, "expires_at": expires})
                return 1
            except DuplicateKeyError:   # another replica was first
                return None
        mine = doc["holder"] == self.holder and doc["token"] == self.token
        if not mine and doc["expires_at"] > now:
            return None                 # someone else's, still running
        token = doc["token"] if mine else doc["token"] + 1
        # compare and set on all three: a renewal that slipped in between
        # changed expires_at, so a contender that read the old one loses
        taken = self.collection.update_one(
            {"_id": self.duty, "holder": doc["holder"], "token": doc["token"],
             "expires_at": doc["expires_at"]},
            {"$set": {"holder": self.holder, "token": token, "expires_at": expires}})
        if taken.matched_count == 1:
            return token
        if mine:   # renewed meanwhile by this holder itself: still its own
            now_doc = self.collection.find_one({"_id": self.duty})
            if now_doc and now_doc["holder"] == self.holder and now_doc["token"] == token:
                return token
        return None

    def release(self):
        """Give the lease up (a clean stop): another replica takes over at
        once instead of after the lease time."""
        if self.token is None:
            return
        try:
            self.collection.update_one(
                {"_id": self.duty, "holder": self.holder, "token": self.token},
                {"$set": {"expires_at": _iso(datetime(1970, 1, 1))}})
        except Exception:   # noqa: BLE001  expiry does the same, later
            pass
        self.token, self.deadline = None, 0.0
        HELD.labels(self.service, self.duty).set(0)


class Duties(DependencyProvider):
    """The leases of a service's background duties (``LEASE_SECONDS``,
    default 15). Timers use it through ``@duty(name)``; a keeper renews every
    duty's lease a few times per lease time, so the replica that holds a duty
    keeps it between its timer's ticks (an hourly scan runs hourly in one
    replica, not in each at its own phase). The outbox relay and the
    statistics roll-up keep leases of their own."""

    def setup(self):
        config = self.container.config
        self.service = self.container.service_name
        self.seconds = float(config.get("LEASE_SECONDS", 15))
        self.holder = holder_id()
        self._client = connect(config)
        self._db = self._client[database_name(config, self.service)]
        self._leases = {}
        self._stop = threading.Event()
        self._gt = None
        cls = self.container.service_cls
        self.names = sorted({getattr(getattr(cls, attr, None), "duty", None)
                             for attr in dir(cls)} - {None})

    def start(self):
        if self.names:
            self._gt = self.container.spawn_managed_thread(self._keep)

    def _keep(self):
        while True:
            for name in self.names:
                self.lease(name).hold()
            if self._stop.wait(self.seconds / 3):
                return

    def lease(self, name):
        if name not in self._leases:
            self._leases[name] = Lease(self._db[LEASES], name, self.holder, self.seconds,
                                       service=self.service)
        return self._leases[name]

    def stop(self):
        self._stop.set()
        if self._gt is not None:
            self._gt.wait()
        for lease in self._leases.values():
            lease.release()
        self._client.close()

    def kill(self):
        self._stop.set()
        if self._gt is not None:
            self._gt.kill()
        self._client.close()

    def get_dependency(self, worker_ctx):
        return self


def duty(name):
    """The decorated method (a timer's) runs only in the replica holding the
    lease of ``name``; elsewhere it returns None at once."""
    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            if not self.duties.lease(name).keep():
                return None
            return method(self, *args, **kwargs)
        run.duty = name
        return run
    return wrap
