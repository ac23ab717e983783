"""Inbox: an event's effect is applied once per consumer, however often it arrives.

``(consumer, event_id)`` is claimed under the unique ``_id`` of the ``inbox``
collection before the effect runs and marked ``done`` after it. A claim whose
effect raised is released so the retry runs it again.

The claim is a lease of ``INBOX_LEASE_SECONDS`` (15 by default), renewed every
third of it while the effect runs. A redelivery that finds a live claim
(another worker is on it) raises ``ClaimHeld``; the event handler retries it
quietly with a growing delay (at most half a lease), without counting it as a
failure. A claim not renewed for a whole lease (its process died) is taken
over, so an event whose consumer was killed mid-effect is applied by the next
delivery within about 1.5 leases. Effects on a copy of another aggregate must
also ignore an older ``seq`` (see ``newer``).

A completed claim records ``done_at`` and expires after
``INBOX_DONE_TTL_DAYS`` (30 by default; a TTL index on MongoDB): far longer
than any redelivery (broker requeue: seconds; a link buffering through an
outage: hours to days; a dead letter replayed later was never completed, so it
has no claim to lose).
"""
import functools
import logging
import time
import uuid
from datetime import datetime, timezone

import eventlet
from pymongo.errors import DuplicateKeyError

from .observability import EVENTS_CONSUMED

log = logging.getLogger(__name__)

DUPLICATE = object()


class ClaimHeld(Exception):
    """Another worker is applying this event right now; try again later."""


DEFAULT_LEASE_SECONDS = 15.0
DEFAULT_DONE_TTL_DAYS = 30


def done_ttl_seconds(config):
    return int(float((config or {}).get("INBOX_DONE_TTL_DAYS", DEFAULT_DONE_TTL_DAYS)) * 86400)


def inbox_indexes(config):
    """The inbox collection's indexes: by state, and the expiry of completed claims."""
    return [([("state", 1)], {}),
            ([("done_at", 1)], {"expireAfterSeconds": done_ttl_seconds(config)})]


def lease_seconds(config):
    return float((config or {}).get("INBOX_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


class Inbox:
    def __init__(self, db, collection="inbox", lease_seconds=DEFAULT_LEASE_SECONDS):
        self.collection = db[collection]
        self.lease_seconds = float(lease_seconds)

    def run(self, consumer, event_id, effect, event_type="?"):
        """Apply ``effect`` once for ``(consumer, event_id)``; ``DUPLICATE``
        (counted as ``outcome="duplicate"``) when it was applied before."""
        key = f"{consumer}:{event_id}"
        token = uuid.uuid4().hex
        now = time.time()
        try:
            self.collection.insert_one({"_id": key, "state": "pending", "at": now,
                                        "holder": token})
        except DuplicateKeyError:
            seen = self.collection.find_one({"_id": key}, {"state": 1})
            if seen and seen.get("state") == "done":
                EVENTS_CONSUMED.labels(consumer.split(".")[0], event_type, "duplicate").inc()
                log.info("duplicate event ignored", extra={"event_id": event_id,
                                                           "event_type": event_type})
                return DUPLICATE
            taken = self.collection.update_one(
                {"_id": key, "state": "pending", "at": {"$lt": now - self.lease_seconds}},
                {"$set": {"at": now, "holder": token}})
            if taken.matched_count != 1:
                raise ClaimHeld(key) from None
            log.info("inbox claim of a stopped consumer taken over", extra={"event_id": event_id})
        renewer = eventlet.spawn(self._renew, key, token)
        try:
            result = effect()
        except BaseException:
            renewer.kill()
            self.collection.delete_one({"_id": key, "state": "pending", "holder": token})
            raise
        renewer.kill()
        self.collection.update_one({"_id": key}, {"$set": {
            "state": "done", "done_at": datetime.now(timezone.utc)}})
        return result

    def _renew(self, key, token):
        """Keep the lease while the effect runs (stopped with the effect)."""
        while True:
            eventlet.sleep(self.lease_seconds / 3)
            try:
                self.collection.update_one({"_id": key, "state": "pending", "holder": token},
                                           {"$set": {"at": time.time()}})
            except Exception:  # the database is away: the effect will fail too
                log.debug("inbox lease not renewed", exc_info=True)

    def seen(self, consumer, event_id):
        doc = self.collection.find_one({"_id": f"{consumer}:{event_id}"}, {"state": 1})
        return bool(doc and doc.get("state") == "done")


def idempotent(key):
    """Apply an event handler method ``(self, event)`` of a service with a
    ``db`` once per event, under the inbox key ``key``: an explicit name, so
    renaming the method never re-applies history. ``{service}`` in the key is
    the service's name (for handlers of kernel mixins). Put it under the
    entrypoint decorator::

        @event_handler("members", "member.removed")
        @idempotent("liaison.on_member_removed")
        def on_member_removed(self, event): ...
    """
    if callable(key) or not isinstance(key, str) or not key:
        raise TypeError('give the inbox key: @idempotent("<service>.<name>")')

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, event):
            consumer = key.format(service=self.name)
            result = Inbox(self.db, lease_seconds=lease_seconds(getattr(self, "config", None))).run(
                consumer, event["event_id"], lambda: method(self, event), event.get("type", "?"))
            return None if result is DUPLICATE else result
        wrapper.inbox_key = key
        return wrapper
    return decorate


def newer(event, current_seq):
    """True when ``event`` is newer than the copy we hold (``seq`` ordering)."""
    return current_seq is None or event["seq"] > current_seq
