"""Notify's MongoDB collections: notifications (the in-app inbox), deliveries
(one per notification and external channel, or per webhook and event) and
preferences. No contact address is ever stored here."""
from pymongo.errors import BulkWriteError

INDEXES = {
    "notifications": [([("recipient", 1), ("created_at", -1)], {})],
    "deliveries": [([("state", 1), ("due_at", 1)], {}), ([("digest_day", 1)], {})],
}
DUPLICATE_KEY = 11000


def insert_new(collection, docs):
    """Insert ``docs``, skipping those already there (a redelivered event)."""
    if not docs:
        return 0
    try:
        return len(collection.insert_many(docs, ordered=False).inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors") or []
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return exc.details.get("nInserted", 0)


class NotifyStore:
    def __init__(self, db):
        self.notifications = db["notifications"]
        self.deliveries = db["deliveries"]
        self.preferences = db["preferences"]

    def prefs(self, recipients):
        recipients = sorted(set(recipients))
        found = {}
        for start in range(0, len(recipients), 500):
            for doc in self.preferences.find({"_id": {"$in": recipients[start:start + 500]}}):
                found[doc["_id"]] = doc
        return found

    def inbox(self, recipient, limit, before=None, unread=False):
        query = {"recipient": recipient}
        if unread:
            query["read"] = 0
        if before:
            at, nid = before
            query = {"$and": [query, {"$or": [{"created_at": {"$lt": at}},
                                              {"created_at": at, "_id": {"$lt": nid}}]}]}
        return list(self.notifications.find(query).sort([("created_at", -1), ("_id", -1)])
                    .limit(limit + 1))

    def unread(self, recipient):
        return self.notifications.count_documents({"recipient": recipient, "read": 0})

    def due(self, now_iso, limit=500):
        return list(self.deliveries.find({"state": "pending", "due_at": {"$lte": now_iso}})
                    .sort("due_at", 1).limit(limit))

    def claim(self, delivery, until_iso):
        """Take a due delivery for sending (one worker wins)."""
        result = self.deliveries.update_one(
            {"_id": delivery["_id"], "state": "pending", "attempts": delivery["attempts"]},
            {"$set": {"state": "sending", "lease_until": until_iso}})
        return result.matched_count == 1

    def settle(self, delivery_id, **fields):
        self.deliveries.update_one({"_id": delivery_id}, {"$set": fields})
