"""The command path: every change to an aggregate runs one sequence.

    load → visibility → seq check → pure domain decision → save (fields and
    events, local and linked, in one outbox write) → view

The service names the aggregate (``Aggregate``: its collection, what it is
called, who may see it) and passes the domain's decision function; the kernel
does the rest the same way everywhere. The problems come in one order: 404
(absent, or not visible to the caller), then 403 (the caller may not take the
action), then 409 (a stale ``seq``, or a state that does not allow it).

A domain function returns a ``Decision``: the fields to set, the events, and
the events for other platforms (``linked``: ``(type, payload, to_org)``; the
link exchange comes from the event registry). The domain decides those, given
the parent's or the origin's org code; the service only runs the path.
"""
from .decisions import Decision, check_seq
from .http import page, page_params
from .mongo import find_page
from .outbox import Aggregates, applied
from .problems import ChangedMeanwhile
from .signing import Refused


# a caller that sent no seq has its change decided again on the new
# document when another change landed in between, at most this many times
ATTEMPTS = 5


class CommandPath:
    """The sequence, as methods of a service (mixed into ``PlatformService``)."""

    def command(self, request, aggregate, aggregate_id, decide, *, expected=None,
                actor=None, principal=None):
        """Load (404), check ``expected`` seq (409), ``decide(doc)`` (pure; its
        403/409/422), save; returns the stored document.

        A caller that sent ``expected`` gets a 409 when the document changed
        since (it asked to act on what it saw). One that did not send it acts
        on the latest document: when another change lands between the load
        and the save (two co-signers confirming at once), the decision is
        taken again on the new document (``ATTEMPTS`` times at most)."""
        if principal is None and request is not None:
            principal = request.principal
        for attempt in range(1, ATTEMPTS + 1):
            doc = aggregate.load(self.db, aggregate_id, principal)
            check_seq(doc, expected)
            try:
                return self.commit(request, aggregate, doc, Decision.of(decide(doc)),
                                   actor=actor)
            except ChangedMeanwhile:
                if expected is not None or attempt == ATTEMPTS:
                    raise

    def linked_command(self, event, aggregate, aggregate_id, decide, *, sent):
        """A linked event's action on a local aggregate: applied only when
        ``sent(doc, origin)`` (pure) says the item was sent to the event's
        origin platform; otherwise refused, which dead-letters the event
        (``not_sent``) instead of touching anything."""
        origin = event["origin"]
        doc = self.db[aggregate.collection].find_one({"_id": aggregate_id})
        if doc is None or not sent(doc, origin):
            raise Refused("not_sent", f"{aggregate.collection} {aggregate_id} was never sent "
                                      f"to {origin}; {event['type']} not applied")
        return self.commit(None, aggregate, doc, Decision.of(decide(doc)),
                           actor=f"org:{origin}")

    def commit(self, request, aggregate, doc, decision, actor=None):
        """Store ``decision`` on ``doc`` with its events (optimistic on ``seq``)."""
        decision = Decision.of(decision)
        events = self.change(request, actor=actor).batch(
            doc["_id"], doc["seq"], decision.events, decision.routed())
        if not (decision.fields or events or decision.unset):
            return doc
        Aggregates(self.db[aggregate.collection]).change(
            doc["_id"], doc["seq"], decision.fields, events, unset=decision.unset)
        # the write matched this very document (its seq): what it stored is
        # known without reading it back
        return applied(doc, decision.fields, events, decision.unset) or \
            self.db[aggregate.collection].find_one({"_id": doc["_id"]})

    def insert(self, request, aggregate, doc, decision=None, actor=None, once=False):
        """Insert ``doc`` with the decision's events; with ``once``, a
        document of that id already there is kept (False returned)."""
        decision = Decision.of(decision or Decision())
        events = self.change(request, actor=actor).batch(
            doc["_id"], 0, decision.events, decision.routed())
        store = Aggregates(self.db[aggregate.collection])
        if once:
            return store.create_once(doc, events)
        return store.create(doc, events)

    def insert_many(self, request, aggregate, docs_and_decisions, actor=None):
        """Insert many new documents, each with its decision's events, in one
        ordered bulk write (imports)."""
        change = self.change(request, actor=actor)
        batch = []
        for doc, decision in docs_and_decisions:
            decision = Decision.of(decision)
            batch.append((doc, change.batch(doc["_id"], 0, decision.events, decision.routed())))
        Aggregates(self.db[aggregate.collection]).create_many(batch)

    def listing(self, request, aggregate, view, renames=None, default_limit=50):
        """A page of ``aggregate`` as the caller may see it, filtered by the
        endpoint's declared query parameters (``request.query``; ``renames``
        maps a parameter to its field); each document shown by ``view``."""
        limit, after = page_params(request, default=default_limit)
        query = {(renames or {}).get(k, k): v for k, v in request.query.items()}
        if aggregate.visibility is not None:
            query = aggregate.visibility.narrow(query, request.principal)
        docs = find_page(self.db[aggregate.collection], query, limit, after)
        return page([view(d) for d in docs], limit)
