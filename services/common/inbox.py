"""Inbox: an event's effect is applied once per consumer, however often it arrives.

``(consumer, event_id)`` is claimed under the unique ``_id`` of the ``inbox``
collection before the effect runs and marked ``done`` after it. A claim whose
effect raised is released so the retry runs it again; a claim left ``pending``
by a crashed process is taken over by the redelivery. Effects on a copy of
another aggregate must also ignore an older ``seq`` (see ``newer``).
"""
import functools
import logging
from datetime import datetime, timezone

from pymongo.errors import DuplicateKeyError

from .observability import EVENTS_CONSUMED

log = logging.getLogger(__name__)

DUPLICATE = object()


class Inbox:
    def __init__(self, db, collection="inbox"):
        self.collection = db[collection]

    def run(self, consumer, event_id, effect):
        key = f"{consumer}:{event_id}"
        try:
            self.collection.insert_one({"_id": key, "state": "pending",
                                        "at": datetime.now(timezone.utc).isoformat()})
        except DuplicateKeyError:
            seen = self.collection.find_one({"_id": key}, {"state": 1})
            if seen and seen.get("state") == "done":
                return DUPLICATE
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
