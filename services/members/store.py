"""Members' MongoDB collection; memberships keyed by their business key."""
import re

from services.common.mongo import find_page, iterate
from services.common.outbox import Aggregates
from services.common.problems import NotFound

# No index on array fields (committees, stations): the embedded wire server's
# index on an array path makes equality matches on elements find nothing.
INDEXES = {
    "linked_members": [([("person_id", 1)], {})],   # a city's copies of county rosters
    "members": [
        ([("person_id", 1)], {}),
        ([("sector", 1)], {}),
        ([("party", 1)], {}),
        ([("role", 1)], {}),
        ([("status", 1)], {}),
        ([("_pending", 1)], {}),
    ],
    "meetings": [([("state", 1)], {}), ([("term", 1)], {}), ([("year", 1)], {}),
                 ([("_pending", 1)], {})],
    # only member_id: the wire server answers {member_id, year} three times
    # slower when year is indexed too (recorded facts are read per member)
    "facts": [([("member_id", 1)], {})],
    "records": [([("year", 1)], {})],
}
RETIRED_INDEXES = {"facts": [[("year", 1)]]}

FILTERS = ("sector", "party", "role", "status", "term", "committee", "station", "name")


class MemberStore:
    def __init__(self, db):
        self.collection = db["members"]
        self.aggregates = Aggregates(self.collection)

    def get(self, member_id):
        return self.collection.find_one({"_id": member_id})

    def require(self, member_id):
        doc = self.get(member_id)
        if doc is None:
            raise NotFound(f"委员 {member_id} 不存在")
        return doc

    def many(self, ids):
        return {d["_id"]: d for d in self.collection.find({"_id": {"$in": list(ids)}})}

    def by_person(self, person_id):
        return list(self.collection.find({"person_id": person_id}).sort("_id", 1))

    @staticmethod
    def query(filters):
        query = {}
        for key in ("sector", "party", "role", "status", "term"):
            if filters.get(key):
                query[key] = filters[key]
        if filters.get("committee"):
            query["committees"] = filters["committee"]
        if filters.get("station"):
            query["stations"] = filters["station"]
        if filters.get("name"):
            query["name"] = {"$regex": re.escape(filters["name"])}
        return query

    def search(self, filters, limit, after=None):
        return find_page(self.collection, self.query(filters), limit, after)

    def all(self, filters=None, batch=500):
        return iterate(self.collection, self.query(filters or {}), batch=batch)
