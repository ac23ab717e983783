"""Proposals' MongoDB collections: proposals, units, counters."""
import re

from pymongo import ReturnDocument

from services.common.mongo import find_page, iterate
from services.common.outbox import Aggregates
from services.common.problems import NotFound

from . import domain

# No index on array fields (handlers, people): see services/members/store.py.
INDEXES = {
    "proposals": [([("state", 1)], {}), ([("year", 1)], {}), ([("session", 1)], {}),
                  ([("lead_unit", 1)], {}), ([("ref", 1)], {}), ([("merged_into", 1)], {}),
                  ([("_pending", 1)], {})],
    "units": [([("_pending", 1)], {})],
}
FILTERS = ("state", "year", "session", "kind", "type", "category", "lead_unit", "key",
           "overdue", "member", "unit", "q")
INT_FILTERS = ("year", "key", "overdue")
SCANNED_STATES = sorted(domain.HANDLING | {"awaiting_evaluation", "cosigning"})
ROUTING_HISTORY = 3000
SIMILARITY_POOL = 3000


class ProposalStore:
    def __init__(self, db):
        self.collection = db["proposals"]
        self.units = db["units"]
        self.counters = db["counters"]
        self.aggregates = Aggregates(self.collection)

    # proposals
    def get(self, proposal_id):
        return self.collection.find_one({"_id": proposal_id})

    def require(self, proposal_id):
        doc = self.get(proposal_id)
        if doc is None:
            raise NotFound(f"提案 {proposal_id} 不存在")
        return doc

    def by_ref(self, ref):
        return self.collection.find_one({"ref": ref})

    def merged_from(self, proposal_id):
        return [d["_id"] for d in self.collection.find({"merged_into": proposal_id},
                                                       {"_id": 1}).sort("_id", 1)]

    @staticmethod
    def query(filters, scope=None):
        """``scope`` narrows to what a unit or member may see."""
        query = {}
        for key in ("state", "session", "kind", "type", "category", "lead_unit"):
            if filters.get(key):
                query[key] = filters[key]
        for key in INT_FILTERS:
            if filters.get(key) is not None:
                query[key] = int(filters[key])
        if filters.get("unit"):
            query["handlers"] = filters["unit"]
        if filters.get("member"):
            query["people"] = filters["member"]
        if filters.get("q"):
            query["title"] = {"$regex": re.escape(filters["q"])}
        if scope:
            query = {"$and": [query, scope]} if query else scope
        return query

    def search(self, filters, scope, limit, after=None):
        return find_page(self.collection, self.query(filters, scope), limit, after)

    def all(self, query=None, projection=None, batch=500):
        return iterate(self.collection, query, projection, batch)

    def for_period(self, year=None, session=None):
        query = {"session": session} if session else ({"year": year} if year else {})
        return list(self.all(query, {"history": 0, "_outbox": 0}))

    def routing_history(self):
        """Past assignments of this platform, newest first."""
        docs = self.collection.find(
            {"assigned_at": {"$ne": None}},
            {"title": 1, "suggestions": 1, "situation": 1, "lead_unit": 1, "co_units": 1,
             "assigned_at": 1}).sort("assigned_at", -1).limit(ROUTING_HISTORY)
        return [(d, d["lead_unit"], d.get("co_units") or []) for d in docs
                if d.get("lead_unit")]

    def similarity_pool(self, exclude):
        docs = self.collection.find(
            {"state": {"$nin": ["draft"]}, "_id": {"$ne": exclude}},
            {"title": 1, "suggestions": 1, "situation": 1, "state": 1, "number": 1,
             "year": 1}).sort("_id", -1).limit(SIMILARITY_POOL)
        return list(docs)

    def scan_candidates(self):
        return self.all({"state": {"$in": SCANNED_STATES}}, {"history": 0})

    def next_number(self, year):
        doc = self.counters.find_one_and_update(
            {"_id": f"proposal-number-{year}"}, {"$inc": {"n": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        return doc["n"]

    # units
    def unit(self, unit_id):
        return self.units.find_one({"_id": unit_id})

    def require_unit(self, unit_id):
        doc = self.unit(unit_id)
        if doc is None:
            raise NotFound(f"承办单位 {unit_id} 不存在")
        return doc

    def unit_names(self):
        """Every unit's code → name, inactive ones too (old proposals name them)."""
        return {d["_id"]: d.get("name") or d["_id"] for d in self.units.find({}, {"name": 1})}

    def active_units(self):
        return {d["_id"]: d for d in self.units.find({"active": 1}).sort("_id", 1)}

    def list_units(self, limit, after=None, active=None):
        query = {} if active is None else {"active": int(active)}
        return find_page(self.units, query, limit, after)
