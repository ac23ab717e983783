"""Inbox: an event's effect is applied once per consumer, however often it arrives.

``(consumer, event_id)`` is claimed under the unique ``_id`` of the ``inbox``
collection before the effect runs and marked ``done`` after it. A claim whose
effect raised is released so the retry runs it again. A redelivery that finds
a fresh ``pending`` claim (another worker is on it) raises ``ClaimHeld`` and
is retried later without counting as a failure; a claim older than
``lease_seconds`` (its process died) is taken over. Effects on a copy of
another aggregate must also ignore an older ``seq`` (see ``newer``).
"""
import functools
import logging
import time

from pymongo.errors import DuplicateKeyError

from .observability import EVENTS_CONSUMED

log = logging.getLogger(__name__)

DUPLICATE = object()


class ClaimHeld(Exception):
    """Another worker is applying this event right now; try again later."""


class Inbox:
    def __init__(self, db, collection="inbox", lease_seconds=300):
        self.collection = db[collection]
        self.lease_seconds = lease_seconds

    def run(self, consumer, event_id, effect):
        key = f"{consumer}:{event_id}"
        now = time.time()
        try:
            self.collection.insert_one({"_id": key, "state": "pending", "at": now})
        except DuplicateKeyError:
            seen = self.collection.find_one({"_id": key}, {"state": 1})
            if seen and seen.get("state") == "done":
                return DUPLICATE
            taken = self.collection.update_one(
                {"_id": key, "state": "pending", "at": {"$lt": now - self.lease_seconds}},
                {"$set": {"at": now}})
            if taken.matched_count != 1:
                raise ClaimHeld(key) from None
        try:
            result = effect()
        except BaseException:
            self.collection.delete_one({"_id": key, "state": "pending"})
            raise
        self.collection.update_one({"_id": key}, {"$set": {"state": "done"}})
        return result

    def seen(self, consumer, event_id):
        doc = self.collection.find_one({"_id": f"{consumer}:{event_id}"}, {"state": 1})
        return bool(doc and doc.get("state") == "done")


def idempotent(method):
    """Wrap an event handler method ``(self, event)`` of a service with a ``db``.

    Put it under the entrypoint decorator::

        @event_handler("members", "member.removed")
        @idempotent
        def on_removed(self, event): ...
    """
    @functools.wraps(method)
    def wrapper(self, event):
        consumer = f"{self.name}.{method.__name__}"
        result = Inbox(self.db).run(consumer, event["event_id"], lambda: method(self, event))
        if result is DUPLICATE:
            EVENTS_CONSUMED.labels(self.name, event.get("type", "?"), "duplicate").inc()
            log.info("duplicate event ignored", extra={"event_id": event["event_id"],
                                                       "event_type": event.get("type")})
            return None
        return result
    return wrapper


def newer(event, current_seq):
    """True when ``event`` is newer than the copy we hold (``seq`` ordering)."""
    return current_seq is None or event["seq"] > current_seq
