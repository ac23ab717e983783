"""Transactional outbox inside the aggregate document.

A change and the events it causes are one single-document update: the events
are stored under ``_outbox.<event_id>`` and ``_pending`` is set. The relay
publishes pending events in ``seq`` order with publisher confirms, and removes
each only after the broker confirmed it. Works on a standalone MongoDB (and on
the embedded wire server, whose ``$push`` of documents is broken, hence a map).
"""
import copy
import logging
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime

import bson
import pymongo
from kombu import Queue
from nameko.amqp.publish import Publisher
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from pymongo.errors import DuplicateKeyError

from .confirms import CONFIRMED, RETURNED, BatchPublisher, Message, NotConfirmed
from .envelope import make_event
from .events import check
from .names import (LINK, LINK_WAITING, OUTBOX, PENDING, PENDING_NOW,  # noqa: F401
                    UNROUTED_QUEUE, link_exchange, link_routing_key)
from .lease import LEASES, Lease, holder_id
from .mongo import connect, database_name
from .observability import (DEAD_LETTER_DEPTH, EVENTS_PUBLISHED, EVENTS_UNROUTABLE,
                            LINK_BACKLOG, LINK_BLOCKED, LINKED_PUBLISHED, OUTBOX_BACKLOG,
                            OUTBOX_OLDEST)
from .problems import ChangedMeanwhile
from .signing import Signer

log = logging.getLogger(__name__)



class Change:
    """Who makes a change: the origin platform, the actor and the trace."""

    def __init__(self, origin, actor=None, trace_id=None):
        self.origin, self.actor, self.trace_id = origin, actor, trace_id

    def event(self, type, aggregate_id, seq, payload, version=1, via=None):
        """A new envelope, after the registry accepted the type and payload
        (``EventContractError`` otherwise: nothing is stored)."""
        check(type, payload, via)
        return make_event(type, origin=self.origin, aggregate_id=aggregate_id, seq=seq,
                          payload=payload, actor=self.actor, trace_id=self.trace_id,
                          version=version)

    def linked(self, type, aggregate_id, seq, payload, *, to, via):
        """An event for platform ``to`` over link exchange ``via`` (zhzx.up or
        zhzx.down): stored in the outbox like the others, published there."""
        link_exchange(via)
        event = self.event(type, aggregate_id, seq, payload, via=via)
        event[LINK] = {"to": str(to), "via": via}
        return event

    def batch(self, aggregate_id, base_seq, events, linked=()):
        """The envelopes of one change: local ``events`` ``(type, payload)``
        numbered on from ``base_seq``, then ``linked`` ones ``(type, payload,
        to, via)``. A linked event is this change told to another platform:
        it carries the aggregate's version after the change and does not add
        one (a change with linked events only is one new version)."""
        out = [self.event(t, aggregate_id, base_seq + i + 1, body)
               for i, (t, body) in enumerate(events)]
        version = base_seq + max(len(out), 1)
        return out + [self.linked(t, aggregate_id, version, body, to=to, via=via)
                      for t, body, to, via in linked]


class Aggregates:
    """Writes aggregates of one collection together with their events."""

    # events written in this process so far, per collection (its full
    # name): a worker that wrote none (a read, a query by RPC) does not wake
    # the relay, and a relay wakes for its own collections only (services
    # may share a process). Counted once the write has returned: a relay that
    # looks at the count in the middle of a write (another worker woke it)
    # then still sees this write as new after it, instead of counting it
    # as flushed before it could read it (which left the event to the poll)
    written = Counter()

    def __init__(self, collection):
        self.collection = collection

    def create_doc(self, doc, events):
        """The document to insert: ``doc`` with ``seq`` and its pending events."""
        doc = dict(doc)
        doc["seq"] = max((e["seq"] for e in events), default=1)
        doc[OUTBOX] = {e["event_id"]: e for e in events}
        doc[PENDING] = PENDING_NOW if events else 0
        return doc

    def create(self, doc, events):
        """Insert; returns the document as the store now holds it (a BSON
        round trip with the collection's codec, not a read back)."""
        doc = self.create_doc(doc, events)
        with self._counted(len(events)):
            self.collection.insert_one(doc)
        return bson.decode(bson.encode(doc), codec_options=self.collection.codec_options)

    def create_once(self, doc, events):
        """Create ``doc`` unless one with its id exists (a copy made by an
        earlier delivery of the same event): True if created now."""
        try:
            self.create(doc, events)
            return True
        except DuplicateKeyError:
            return False

    def create_many(self, docs_and_events):
        docs = [self.create_doc(d, ev) for d, ev in docs_and_events]
        if docs:
            with self._counted(sum(len(ev) for _, ev in docs_and_events)):
                self.collection.insert_many(docs, ordered=True)

    @contextmanager
    def _counted(self, events):
        """Count ``events`` as written once the write returned, whether it
        stored them all, some or none: a count too many costs the relay one
        read that finds nothing."""
        try:
            yield
        finally:
            if events:
                Aggregates.written[self.collection.full_name] += events

    def change(self, aggregate_id, expected_seq, fields, events, unset=()):
        """Apply ``fields`` and queue ``events`` if nobody changed it since
        ``expected_seq``; raises Conflict otherwise (optimistic concurrency)."""
        update = {"$set": dict(fields)}
        update["$set"]["seq"] = max((e["seq"] for e in events), default=expected_seq)
        for e in events:
            update["$set"][f"{OUTBOX}.{e['event_id']}"] = e
        if events:
            update["$set"][PENDING] = PENDING_NOW
        if unset:
            update["$unset"] = {name: "" for name in unset}
        with self._counted(len(events)):
            result = self.collection.update_one({"_id": aggregate_id, "seq": expected_seq},
                                                update)
        if result.matched_count != 1:
            raise ChangedMeanwhile("记录已被他人修改，请刷新后重试",
                                   current_seq=self.current_seq(aggregate_id))

    def current_seq(self, aggregate_id):
        doc = self.collection.find_one({"_id": aggregate_id}, {"seq": 1})
        return doc["seq"] if doc else None


def applied(doc, fields, events=(), unset=()):
    """``doc`` as the store holds it after ``Aggregates.change(…, fields,
    events, unset)`` matched it: dotted names reach into sub-documents, as
    ``$set``/``$unset`` do. ``None`` when a name goes through something that
    is not a sub-document (read the document back instead)."""
    new = copy.deepcopy(doc)
    changes = [(name, True, value) for name, value in fields.items()]
    changes += [(f"{OUTBOX}.{e['event_id']}", True, e) for e in events]
    changes += [(name, False, None) for name in unset]
    for name, setting, value in changes:
        *parents, last = name.split(".")
        target = new
        for part in parents:
            if not isinstance(target, dict):
                return None
            target = target.setdefault(part, {}) if setting else target.get(part, {})
        if not isinstance(target, dict):
            return None
        if setting:
            target[last] = value
        else:
            target.pop(last, None)
    new["seq"] = max((e["seq"] for e in events), default=doc["seq"])
    if events:
        new[PENDING] = PENDING_NOW
    return new


def occurred_epoch(event):
    """``occurred_at`` as whole epoch seconds: the AMQP timestamp of a linked
    message, so a buffered link shows how old its oldest event is."""
    try:
        return int(datetime.fromisoformat(str(event["occurred_at"]).replace("Z", "+00:00"))
                   .timestamp())
    except (KeyError, ValueError):
        return int(time.time())


def strip_internal(doc):
    return {k: v for k, v in doc.items() if k not in (OUTBOX, PENDING)}


class OutboxRelay(DependencyProvider):
    """Publishes the outbox of the given collections to ``<service>.events``.

    Wakes after every worker that wrote events and every
    ``OUTBOX_POLL_SECONDS`` (the safety net
    for crashes and broker outages). Events nobody is bound to receive are
    returned by the broker (``mandatory``) and parked in ``zhzx.unrouted``
    instead of vanishing.
    """

    def __init__(self, *collections, batch=200):
        self.collection_names = collections
        self.batch = batch

    def setup(self):
        config = self.container.config
        self.service = self.container.service_name
        self.interval = float(config.get("OUTBOX_POLL_SECONDS", 2))
        self.measure_every = float(config.get("OUTBOX_MEASURE_SECONDS", 5))
        self.exchange = get_event_exchange(self.service, config)
        # a link route without a binding is retried after 1, 2, 4 … seconds
        self.route_retry_max = float(config.get("LINK_RETRY_MAX_SECONDS", 30))
        self._route_wait = {}   # (exchange, org) -> (retry at, delay)
        self._links_due = 0.0   # when documents waiting for a link are read again
        # a batch's publisher confirms awaited together, on one channel
        self.confirms = BatchPublisher(
            config["AMQP_URI"], ssl=config.get("AMQP_SSL"),
            confirm_timeout=float(config.get("OUTBOX_CONFIRM_TIMEOUT_SECONDS", 30)))
        self.unrouted = Publisher(config["AMQP_URI"], use_confirms=True,
                                  declare=[Queue(UNROUTED_QUEUE, durable=True)])
        self._wake = threading.Event()
        # Aggregates.written of each collection when its last flush began
        self._flushed_at = {}
        self._everything = False   # kicked: flush every collection
        self._gt = None
        self._running = False
        self._client = connect(config)
        self._db = self._client[database_name(config, self.service)]
        self._signer = None
        # one relay per platform publishes, however many replicas run
        self.lease = Lease(self._db[LEASES], "outbox", holder_id(),
                           float(config.get("LEASE_SECONDS", 15)), service=self.service)

    @property
    def signer(self):
        """Signs linked events with ``LINK_SIGNING_KEY`` (checked at start by
        ``RequiredSecrets``)."""
        if self._signer is None:
            self._signer = Signer(self.container.config["LINK_SIGNING_KEY"])
        return self._signer

    def start(self):
        self._running = True
        self._gt = self.container.spawn_managed_thread(self._run)

    def stop(self):
        self._running = False
        self._wake.set()
        if self._gt is not None:
            self._gt.wait()
        self.lease.release()
        self.confirms.close()
        self._client.close()

    def kill(self):
        self._running = False
        if self._gt is not None:
            self._gt.kill()
        self.confirms.close()

    def worker_teardown(self, worker_ctx):
        self.wake()

    def wake(self):
        """Flush now if events were written to this relay's collections since
        its last flush: called at every worker's end, and by code that writes
        events outside a worker (a duty's own thread), which would otherwise
        wait for the poll."""
        if self._written():
            self._wake.set()

    def _written(self):
        """Those of this relay's collections with events written in this
        process since their last flush began."""
        names = [(name, f"{self._db.name}.{name}") for name in self.collection_names]
        return [name for name, full in names
                if Aggregates.written[full] != self._flushed_at.get(name, -1)]

    def _flushing(self):
        """The collections written since the last flush began; and note the
        counts that the flush about to begin covers (a write counted after
        this one wakes the relay again)."""
        written = self._written()
        for name in self.collection_names:
            self._flushed_at[name] = Aggregates.written[f"{self._db.name}.{name}"]
        return written

    def get_dependency(self, worker_ctx):
        return self

    def kick(self):
        """Flush every collection now."""
        self._everything = True
        self._wake.set()

    def _run(self):
        failures = 0
        measured = 0.0
        while self._running:
            woken = self._wake.wait(timeout=self.interval if not failures
                                    else min(30, self.interval * 2 ** failures))
            self._wake.clear()
            if not self._running:
                break
            # woken by a write: the collections written; else (a kick, the
            # safety net's poll, a retry after a failure) all of them
            everything = bool(self._everything or failures or not woken)
            self._everything = False
            written = self._flushing()
            names = self.collection_names if everything else written
            try:
                if self.lease.keep():   # another replica's relay is the active one
                    self.flush(names=names)
                failures = 0
            except Exception as exc:  # broker or database down: keep the events
                failures = min(failures + 1, 5)
                log.warning("outbox relay could not publish (%s: %s); will retry",
                            type(exc).__name__, exc)
            if time.monotonic() - measured >= self.measure_every:
                measured = time.monotonic()
                self._measure()

    def flush(self, max_rounds=1000, names=None):
        """Publish everything pending now in ``names`` (default: all the
        relay's collections); returns the number published. Each batch of
        documents is settled in one bulk write, and starts only while this
        replica holds the relay's lease (common/lease.py).

        A document whose unsent events all wait for links without a route is
        marked ``_pending: 2`` (``LINK_WAITING``) and read again only when a
        route is due to be tried (or works again, or every
        ``LINK_RETRY_MAX_SECONDS``), not by every flush: a county whose link
        is down for hours does not re-read its whole backlog after every
        write. Any new event on it makes it ``_pending: 1`` again."""
        db = self._db
        published = 0
        now = time.monotonic()
        if now >= self._links_due:   # every collection's documents waiting for a link
            states = {"$in": [PENDING_NOW, LINK_WAITING]}
            self._links_due = now + self.route_retry_max
            names = None
        else:
            states = PENDING_NOW
        for name in (self.collection_names if names is None else names):
            collection = db[name]
            for docs in self._batches(collection, states, max_rounds):
                if not self.lease.keep():   # lost (or could not renew): stop now
                    return published
                sent = {doc["_id"]: [] for doc in docs}
                blocked = {doc["_id"]: set() for doc in docs}
                try:
                    self._publish_docs(docs, sent, blocked)
                finally:  # what the broker confirmed is settled even if the rest failed
                    published += self._settle(collection, [
                        (doc, sent[doc["_id"]], self._after(doc, sent[doc["_id"]],
                                                            blocked[doc["_id"]]))
                        for doc in docs])
        if self._route_wait:   # the earliest route due to be tried again
            self._links_due = min(self._links_due,
                                  min(at for at, _ in self._route_wait.values()))
        return published

    def _batches(self, collection, states, max_rounds):
        """The pending documents, in batches. Usually (after a write) they fit
        in one: one query. Otherwise their ids once (one scan), then their
        documents by id: re-querying the pending set per batch costs a scan
        each."""
        fields = {OUTBOX: 1, "seq": 1, PENDING: 1}
        docs = list(collection.find({PENDING: states}, fields).sort("_id", 1)
                    .limit(self.batch + 1))
        if len(docs) <= self.batch:
            if docs:
                yield docs
            return
        ids = [d["_id"] for d in collection.find({PENDING: states}, {"_id": 1})
               .sort("_id", 1).limit(max_rounds * self.batch)]
        for start in range(0, len(ids), self.batch):
            yield sorted(collection.find({"_id": {"$in": ids[start:start + self.batch]},
                                          PENDING: states}, fields), key=lambda d: d["_id"])

    def _after(self, doc, sent, blocked):
        """``_pending`` once ``sent`` is settled: 0 when nothing is left,
        ``LINK_WAITING`` when all that is left waits for a route, else
        unchanged (None)."""
        ids = {e["event_id"] for e in sent}
        unsent = [e for e in (doc.get(OUTBOX) or {}).values() if e["event_id"] not in ids]
        if not unsent:
            return 0
        if all(self._route(e) in blocked for e in unsent):
            return LINK_WAITING
        return None

    @staticmethod
    def _settle(collection, settled):
        """Remove the confirmed events of ``(doc, sent, after)`` triples and
        set ``_pending`` to ``after`` (unless None) where the document did not
        change meanwhile (its ``seq`` moved on: then it stays pending)."""
        ops, conditional = [], []
        for doc, sent, after in settled:
            unset = {f"{OUTBOX}.{e['event_id']}": "" for e in sent}
            if after is not None and (unset or doc.get(PENDING) != after):
                update = {"$set": {PENDING: after}}
                if unset:
                    update["$unset"] = unset
                    conditional.append(pymongo.UpdateOne({"_id": doc["_id"]}, {"$unset": unset}))
                ops.append(pymongo.UpdateOne({"_id": doc["_id"], "seq": doc["seq"]}, update))
            elif unset:
                ops.append(pymongo.UpdateOne({"_id": doc["_id"]}, {"$unset": unset}))
        if ops:
            expected = len(ops)
            result = collection.bulk_write(ops, ordered=False)
            if result.matched_count < expected and conditional:
                # some changed meanwhile: drop what was sent, keep them pending
                collection.bulk_write(conditional, ordered=False)
        return sum(len(sent) for _, sent, _ in settled)

    def backlog(self, linked_only=False):
        """Events waiting in the outbox (only the linked ones if asked)."""
        return self.waiting(linked_only)[0]

    def waiting(self, linked_only=False):
        """``(count, oldest occurred_at or None)`` of the events waiting."""
        db = self._db
        total, oldest = 0, None
        for name in self.collection_names:
            for doc in db[name].find({PENDING: {"$in": [PENDING_NOW, LINK_WAITING]}},
                                     {OUTBOX: 1}):
                events = [e for e in (doc.get(OUTBOX) or {}).values()
                          if not linked_only or LINK in e]
                total += len(events)
                for e in events:
                    if oldest is None or e["occurred_at"] < oldest:
                        oldest = e["occurred_at"]
        return total, oldest

    def _publish_docs(self, docs, sent, blocked):
        """Publish the pending events of ``docs`` into ``sent`` (doc id ->
        events the broker took), noting in ``blocked`` (doc id -> routes)
        what waits for a link, in rounds: each round takes the next event
        of every document and awaits the round's confirms together
        (common/confirms.py), so an aggregate never has two events in flight
        and its order holds even when the broker refuses one.

        A linked event without a route to its platform yet (returned) waits
        with that aggregate's later events to the same platform, and the
        route is tried again after a growing delay; a local event nobody is
        bound to receive is parked in ``zhzx.unrouted``. A refused or
        unanswered event stops its aggregate for this flush
        (``NotConfirmed`` is raised once the round is settled)."""
        queues = {doc["_id"]: sorted((doc.get(OUTBOX) or {}).values(), key=lambda e: e["seq"])
                  for doc in docs}
        refused = None
        while True:
            now = time.monotonic()
            batch = []
            for doc_id, events in queues.items():
                while events:
                    event = events.pop(0)
                    route = self._route(event)
                    if route and (route in blocked[doc_id]
                                  or self._route_wait.get(route, (0, 0))[0] > now):
                        blocked[doc_id].add(route)   # keeps the order towards that platform
                        continue
                    batch.append((doc_id, event))
                    break
            if not batch:
                break
            try:
                outcomes = self.confirms.publish([self._message(e) for _, e in batch])
            except NotConfirmed as exc:
                outcomes, refused = exc.outcomes, exc
            for (doc_id, event), outcome in zip(batch, outcomes):
                route = self._route(event)
                if outcome == CONFIRMED:
                    sent[doc_id].append(event)
                    self._published(event)
                    if self._route_wait.pop(route, None):   # works again: the waiting too
                        self._links_due = 0.0
                elif outcome == RETURNED and route:
                    # no route to that platform yet: it and its later events wait
                    blocked[doc_id].add(route)
                    delay = min(self.route_retry_max,
                                2 * self._route_wait.get(route, (0, 0.5))[1])
                    self._route_wait[route] = (now + delay, delay)
                    LINK_BLOCKED.labels(self.service, route[0]).inc()
                elif outcome == RETURNED:
                    self._park_unrouted(event)
                    sent[doc_id].append(event)
                    self._published(event)
                else:   # refused or unanswered: published again by a later flush
                    queues[doc_id] = []
            if refused is not None and refused.cause is not None:
                break   # the connection is gone: the rest waits for the next flush
        if refused is not None:
            raise refused

    @staticmethod
    def _route(event):
        return (event[LINK]["via"], event[LINK]["to"]) if LINK in event else None

    def _message(self, event):
        headers = {"nameko.trace_id": event.get("trace_id")}
        if LINK not in event:
            return Message(event, self.exchange, event["type"], headers, event["event_id"])
        body = {k: v for k, v in event.items() if k != LINK}
        to = event[LINK]["to"]
        return Message(body, link_exchange(event[LINK]["via"]),
                       link_routing_key(to, event["type"]),
                       {**headers, **self.signer.headers(to, body)}, event["event_id"],
                       occurred_epoch(event))

    def _published(self, event):
        if LINK in event:
            LINKED_PUBLISHED.labels(self.service, link_exchange(event[LINK]["via"]).name,
                                    event["type"]).inc()
        else:
            EVENTS_PUBLISHED.labels(self.service, event["type"]).inc()

    def _park_unrouted(self, event):
        self.unrouted.publish(
            event, exchange="", routing_key=UNROUTED_QUEUE, message_id=event["event_id"],
            headers={"nameko.trace_id": event.get("trace_id"),
                     "x-zhzx-exchange": self.exchange.name,
                     "x-zhzx-routing-key": event["type"]})
        EVENTS_UNROUTABLE.labels(self.service, event["type"]).inc()
        log.info("no queue bound for %s; parked in %s", event["type"], UNROUTED_QUEUE,
                 extra={"event_type": event["type"], "event_id": event["event_id"],
                        "trace_id": event.get("trace_id")})

    def _measure(self):
        """Backlog and dead-letter depth: whole scans, so at most every
        ``OUTBOX_MEASURE_SECONDS`` rather than after every flush."""
        try:
            total, oldest = self.waiting()
            OUTBOX_BACKLOG.labels(self.service).set(total)
            OUTBOX_OLDEST.labels(self.service).set(
                max(0, time.time() - occurred_epoch({"occurred_at": oldest})) if oldest else 0)
            LINK_BACKLOG.labels(self.service).set(self.backlog(linked_only=True))
        except Exception:
            pass
        try:
            from .dlq import depth
            DEAD_LETTER_DEPTH.labels(self.service).set(
                depth(self.container.config["AMQP_URI"]))
        except Exception:
            pass
