"""Liaison's MongoDB collections: stations, requests, consultations, opinions."""
from pymongo import ReturnDocument

from services.common.mongo import find_page, iterate

# No index on array fields (stations.members): see services/members/store.py.
INDEXES = {
    "stations": [([("township", 1)], {}), ([("_pending", 1)], {})],
    "requests": [([("station_id", 1)], {}), ([("member_id", 1)], {}), ([("state", 1)], {}),
                 ([("year", 1)], {}), ([("_pending", 1)], {})],
    "consultations": [([("year", 1)], {}), ([("_pending", 1)], {})],
    "opinions": [([("year", 1)], {}), ([("author_member", 1)], {}), ([("_pending", 1)], {})],
    "tasks": [([("_pending", 1)], {})],
}


class LiaisonStore:
    def __init__(self, db):
        self.db = db
        self.counters = db["counters"]

    def get(self, kind, doc_id):
        return self.db[kind].find_one({"_id": doc_id})

    def page(self, kind, query, limit, after=None):
        return find_page(self.db[kind], query, limit, after)

    def all(self, kind, query=None, projection=None, batch=500):
        return iterate(self.db[kind], query, projection, batch)

    def stations_of_member(self, member_id):
        return list(self.all("stations", {"members": member_id}))

    def stations_by_id(self):
        return {s["_id"]: s for s in self.all("stations")}

    def member_load(self, member_ids):
        load = {}
        for r in self.all("requests", {"state": {"$in": ["dispatched", "accepted"]}},
                          {"member_id": 1}):
            if r.get("member_id") in member_ids:
                load[r["member_id"]] = load.get(r["member_id"], 0) + 1
        return load

    def next_number(self, name):
        doc = self.counters.find_one_and_update(
            {"_id": name}, {"$inc": {"n": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        return doc["n"]

    def raise_counter(self, name, value):
        """Make ``next_number`` continue after ``value`` (numbers given on import)."""
        doc = self.counters.find_one({"_id": name})
        if (doc or {}).get("n", 0) < value:
            self.counters.update_one({"_id": name}, {"$set": {"n": value}}, upsert=True)
