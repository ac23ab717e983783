"""Every query shape the services use, against the Mongo wire server in use.

The embedded server is incomplete (DESIGN.md, Storage); when a shape breaks
there, this test says which one before a service misbehaves.
"""
import time
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timezone

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError

from services.common.inbox import inbox_indexes
from services.common.mongo import find_page
from services.common.outbox import OUTBOX, PENDING, Aggregates, Change
from services.common.problems import Conflict
from services.members.store import INDEXES, MemberStore
from tests import fakes  # noqa: F401  registers the x.* test event types

pytestmark = pytest.mark.service


@pytest.fixture
def db(infra):
    client = pymongo.MongoClient(infra.mongo_uri)
    name = f"conf_{uuid.uuid4().hex[:8]}"
    database = client[name]
    for keys, options in INDEXES["members"]:
        database.members.create_index(keys, **options)
    yield database
    client.drop_database(name)


def test_outbox_map_set_unset_and_pending_scan(db):
    agg = Aggregates(db.members)
    change = Change("140428", actor="a", trace_id="t")
    agg.create({"_id": "a1", "name": "甲"}, [change.event("x.created", "a1", 1, {"k": [1]})])
    agg.create_many([({"_id": f"b{i}"}, [change.event("x.created", f"b{i}", 1, {})])
                     for i in range(3)])
    e2 = change.event("x.changed", "a1", 2, {"nested": {"deep": True}})
    agg.change("a1", 1, {"name": "乙"}, [e2])
    doc = db.members.find_one({"_id": "a1"})
    assert doc["seq"] == 2 and doc[PENDING] == 1 and len(doc[OUTBOX]) == 2
    assert doc[OUTBOX][e2["event_id"]]["payload"] == {"nested": {"deep": True}}
    with pytest.raises(Conflict):
        agg.change("a1", 1, {"name": "丙"}, [])
    pending = list(db.members.find({PENDING: 1}, {OUTBOX: 1, "seq": 1}).sort("_id", 1).limit(2))
    assert [d["_id"] for d in pending] == ["a1", "b0"]
    unset = {f"{OUTBOX}.{k}": "" for k in doc[OUTBOX]}
    assert db.members.update_one({"_id": "a1", "seq": 2},
                                 {"$unset": unset, "$set": {PENDING: 0}}).matched_count == 1
    doc = db.members.find_one({"_id": "a1"})
    assert doc[OUTBOX] == {} and doc[PENDING] == 0 and doc["name"] == "乙"
    assert db.members.count_documents({PENDING: 1}) == 3
    # the relay's scan of both pending states (docs waiting for a link are 2)
    db.members.update_one({"_id": "b1"}, {"$set": {PENDING: 2}})
    assert [d["_id"] for d in db.members.find({PENDING: 1}, {"_id": 1}).sort("_id", 1)] == [
        "b0", "b2"]
    assert [d["_id"] for d in db.members.find({PENDING: {"$in": [1, 2]}}, {"_id": 1})
            .sort("_id", 1)] == ["b0", "b1", "b2"]
    assert [d["_id"] for d in db.members.find({"_id": {"$in": ["b1", "b2"]},
                                               PENDING: {"$in": [1, 2]}})] == ["b1", "b2"]
    db.members.update_one({"_id": "b1"}, {"$set": {PENDING: 1}})


def test_a_created_aggregate_is_returned_as_the_store_keeps_it(db):
    """``Aggregates.create`` answers with the stored document without reading
    it back: the same as a read, datetimes and sequences included."""
    agg = Aggregates(db.members)
    event = Change("140428", actor="a").event("x.created", "c1", 1, {})
    created = agg.create({"_id": "c1", "at": datetime(2026, 3, 1, 9, 30, 15, 123456),
                          "tags": ("a", "b"), "nested": {"n": 1}}, [event])
    assert created == db.members.find_one({"_id": "c1"})


def test_retired_indexes_are_dropped_and_declared_ones_kept_at_start(db):
    from services.common.mongo import Mongo
    db.facts.create_index([("member_id", 1)])
    db.facts.create_index([("year", 1)])
    provider = Mongo(indexes={"facts": [([("member_id", 1)], {})]},
                     retired={"facts": [[("year", 1)], [("never", 1)]]})
    provider.db, provider.container = db, type("C", (), {"config": {}})()
    provider.start()
    provider.start()   # a second start finds nothing to drop
    assert [list(ix["key"]) for ix in db.facts.list_indexes()] == [["_id"], ["member_id"]]


def test_recorded_facts_query_shapes(db):
    """The 履职档案's facts: upserted in one ordered bulk write, read by
    ``_id`` in a list and by one member or several, with or without year."""
    from services.members.store import INDEXES as M_INDEXES
    for keys, options in M_INDEXES["facts"]:
        db.facts.create_index(keys, **options)
    facts = [{"_id": f"proposal:p{i}:m{i % 3}", "member_id": f"m{i % 3}",
              "year": 2025 + i % 2, "kind": "proposal_lead", "seq": 1} for i in range(12)]
    db.facts.bulk_write([pymongo.UpdateOne({"_id": f["_id"]}, {"$set": {
        k: v for k, v in f.items() if k != "_id"}}, upsert=True) for f in facts], ordered=True)
    db.facts.bulk_write([pymongo.UpdateOne({"_id": "proposal:p0:m0"}, {"$set": {"seq": 2}},
                                           upsert=True)], ordered=True)
    assert db.facts.count_documents({}) == 12
    assert db.facts.find_one({"_id": "proposal:p0:m0"})["seq"] == 2
    assert {f["_id"] for f in db.facts.find({"_id": {"$in": ["proposal:p1:m1", "x"]}})} == {
        "proposal:p1:m1"}
    assert len(list(db.facts.find({"member_id": "m0", "year": 2025}))) == 2
    assert len(list(db.facts.find({"member_id": {"$in": ["m0", "m1"]}}))) == 8
    assert len(list(db.facts.find({"member_id": {"$in": ["m0", "m2"]}, "year": 2026}))) == 4


def test_member_queries(db):
    store = MemberStore(db)
    docs = [{"_id": f"m{i:03d}", "name": name, "committees": comms, "sector": sector,
             "party": "cpc", "person_id": "p1" if i < 2 else f"p{i}", "status": "active"}
            for i, (name, comms, sector) in enumerate([
                ("王建国", ["提案委", "经济委"], "经济界"), ("李王芳", ["文史委"], "教育界"),
                ("张三", ["提案委"], "经济界"), ("赵(四)", ["经济委"], "农业界")])]
    db.members.insert_many(docs)
    ids = lambda found: [d["_id"] for d in found]  # noqa: E731
    assert ids(store.search({"committee": "提案委"}, 10)) == ["m000", "m002"]
    assert ids(store.search({"name": "王"}, 10)) == ["m000", "m001"]
    assert ids(store.search({"name": "(四)"}, 10)) == ["m003"]
    assert ids(store.search({"sector": "经济界", "committee": "经济委"}, 10)) == ["m000"]
    assert ids(store.search({}, 2)) == ["m000", "m001", "m002"]  # limit + 1
    assert ids(store.search({"committee": "提案委"}, 10, after="m000")) == ["m002"]
    assert ids(find_page(db.members, {}, 1, after="m002")) == ["m003"]
    assert sorted(store.many(["m001", "m003", "zz"])) == ["m001", "m003"]
    assert ids(store.by_person("p1")) == ["m000", "m001"]
    assert len(list(store.all({"party": "cpc"}, batch=1))) == 4


def test_inbox_claims(db):
    db.inbox.insert_one({"_id": "c:e1", "state": "pending", "at": time.time() - 1000})
    with pytest.raises(DuplicateKeyError):
        db.inbox.insert_one({"_id": "c:e1", "state": "pending", "at": time.time()})
    stale = db.inbox.update_one({"_id": "c:e1", "state": "pending",
                                 "at": {"$lt": time.time() - 300}}, {"$set": {"at": time.time()}})
    assert stale.matched_count == 1
    fresh = db.inbox.update_one({"_id": "c:e1", "state": "pending",
                                 "at": {"$lt": time.time() - 300}}, {"$set": {"at": 0}})
    assert fresh.matched_count == 0
    assert db.inbox.delete_one({"_id": "c:e1", "state": "done"}).deleted_count == 0
    for keys, options in inbox_indexes({"INBOX_DONE_TTL_DAYS": 30}):   # the TTL index too
        db.inbox.create_index(keys, **options)
    db.inbox.update_one({"_id": "c:e1"}, {"$set": {"state": "done",
                                                   "done_at": datetime.now(timezone.utc)}})
    done = db.inbox.find_one({"_id": "c:e1"})
    # the wire server keeps a BSON date as its text and never expires by TTL
    # (a gap: MongoDB returns a datetime and removes the claim after the TTL)
    assert done["state"] == "done" and str(done["done_at"]).startswith(str(date.today().year))


@contextmanager
def service_db(infra, indexes):
    """A fresh database with a service's ``INDEXES``, dropped afterwards."""
    client = pymongo.MongoClient(infra.mongo_uri)
    name = f"conf_{uuid.uuid4().hex[:8]}"
    database = client[name]
    for collection, specs in indexes.items():
        for keys, options in specs:
            database[collection].create_index(keys, **options)
    try:
        yield database
    finally:
        client.drop_database(name)


def test_proposal_store_query_shapes(infra):
    from services.proposals.store import INDEXES as P_INDEXES, ProposalStore
    with service_db(infra, P_INDEXES) as database:
        store = ProposalStore(database)
        docs = [{"_id": "p1", "state": "draft", "year": 2026, "handlers": [], "people": ["m1"],
                 "title": "关于学校(一)的建议", "assigned_at": None},
                {"_id": "p2", "state": "in_handling", "year": 2026, "handlers": ["u1", "u2"],
                 "people": ["m2"], "lead_unit": "u1", "co_units": ["u2"],
                 "assigned_at": "2026-03-01", "merged_into": None, "ref": "r2",
                 "history": [{"action": "submit", "on": "2026-02-01"}]},
                {"_id": "p3", "state": "merged", "year": 2025, "handlers": ["u3"],
                 "people": ["m1", "m2"], "lead_unit": "u3", "assigned_at": "2026-04-01",
                 "merged_into": "p2"}]
        store.aggregates.create_many([(d, []) for d in docs])
        # array element match on unindexed arrays, inside $or and $and
        scope = {"$or": [{"handlers": "u2"}, {"people": "m1"}]}
        assert [d["_id"] for d in store.search({}, scope, 10)] == ["p1", "p2", "p3"]
        assert [d["_id"] for d in store.search({"year": "2026"}, scope, 10)] == ["p1", "p2"]
        assert [d["_id"] for d in store.search({"unit": "u3"}, None, 10)] == ["p3"]
        assert [d["_id"] for d in store.search({"q": "学校(一)"}, None, 10)] == ["p1"]
        # $ne null, sort descending; $nin with $ne
        assert [h[1] for h in store.routing_history()] == ["u3", "u1"]
        assert [d["_id"] for d in store.similarity_pool(exclude="p2")] == ["p3"]
        assert store.merged_from("p2") == ["p3"] and store.by_ref("r2")["_id"] == "p2"
        # $in over states, projection excluding fields
        scanned = list(store.scan_candidates())
        assert [d["_id"] for d in scanned] == ["p2"] and "history" not in scanned[0]
        assert [d["_id"] for d in store.for_period(year=2026)] == ["p1", "p2"]
        # counters: upsert with $inc, the new value returned
        assert [store.next_number(2026) for _ in range(3)] == [1, 2, 3]
        assert store.next_number(2027) == 1
        # lists of sub-documents replaced whole with $set keep their shape
        store.aggregates.change("p2", 1, {"history": docs[1]["history"] + [
            {"action": "start", "on": "2026-03-02"}]}, [])
        assert store.get("p2")["history"][-1] == {"action": "start", "on": "2026-03-02"}


def test_outbox_relay_bulk_settles_with_per_document_conditions(db):
    """The relay settles a batch in one bulk write: conditional on ``seq``,
    an unmatched condition counted, an unconditional ``$unset`` applied."""
    agg = Aggregates(db.members)
    change = Change("140428", actor="a")
    events = {}
    for i in range(3):
        events[i] = change.event("x.created", f"k{i}", 1, {})
        agg.create({"_id": f"k{i}"}, [events[i]])
    ops = [pymongo.UpdateOne({"_id": "k0", "seq": 1}, {"$unset": {
               f"{OUTBOX}.{events[0]['event_id']}": ""}, "$set": {PENDING: 0}}),
           pymongo.UpdateOne({"_id": "k1", "seq": 7}, {"$unset": {   # changed meanwhile
               f"{OUTBOX}.{events[1]['event_id']}": ""}, "$set": {PENDING: 0}}),
           pymongo.UpdateOne({"_id": "k2"}, {"$unset": {f"{OUTBOX}.{events[2]['event_id']}": ""}})]
    result = db.members.bulk_write(ops, ordered=False)
    assert result.matched_count == 2
    docs = {d["_id"]: d for d in db.members.find({"_id": {"$in": ["k0", "k1", "k2"]}})}
    assert docs["k0"][PENDING] == 0 and docs["k0"][OUTBOX] == {}
    assert docs["k1"][PENDING] == 1 and len(docs["k1"][OUTBOX]) == 1
    assert docs["k2"][PENDING] == 1 and docs["k2"][OUTBOX] == {}


def test_provincial_delivery_query_shapes(infra):
    from services.provincial.service import INDEXES as D_INDEXES
    with service_db(infra, D_INDEXES) as database:
        deliveries = database.deliveries
        deliveries.insert_many([
            {"_id": "opinion:o1", "kind": "opinion", "state": "pending", "attempts": 0,
             "next_at": "2026-11-27T09:00:00", "created_at": "2026-11-27T08:00:00",
             "item": {"content": "长文"}},
            {"_id": "proposal:p1", "kind": "proposal", "state": "sending", "attempts": 1,
             "lease_until": "2026-11-27T08:59:00", "next_at": "2026-11-27T08:00:00",
             "created_at": "2026-11-27T07:00:00", "item": {}},
            {"_id": "opinion:o2", "kind": "opinion", "state": "acknowledged", "record_id": "R2",
             "checked_at": "2026-11-27T09:00:00", "created_at": "2026-11-27T06:00:00"},
            {"_id": "opinion:o3", "kind": "opinion", "state": "acknowledged", "record_id": "R3",
             "created_at": "2026-11-27T06:00:00"},
            {"_id": "task_report:T1:accepted", "kind": "task_report", "state": "acknowledged",
             "record_id": None, "created_at": "2026-11-27T06:00:00"}])
        now = "2026-11-27T09:30:00"
        # the sender's due scan: $or of two states, $lte on strings, projection out
        due = list(deliveries.find({"$or": [{"state": "pending", "next_at": {"$lte": now}},
                                            {"state": "sending", "lease_until": {"$lte": now}}]},
                                   {"item": 0}).sort("next_at", 1).limit(10))
        assert [d["_id"] for d in due] == ["proposal:p1", "opinion:o1"]
        assert "item" not in due[0]
        # compare and set: one claim wins
        claim = {"_id": "opinion:o1", "state": "pending", "attempts": 0}
        assert deliveries.update_one(claim, {"$set": {"state": "sending", "attempts": 1}}
                                     ).matched_count == 1
        assert deliveries.update_one(claim, {"$set": {"state": "sending"}}).matched_count == 0
        # the reconciliation: records only, never checked first
        checked = list(deliveries.find({"state": "acknowledged", "kind": {
            "$in": ["opinion", "proposal"]}}, {"record_id": 1}).sort("checked_at", 1).limit(5))
        assert [d["_id"] for d in checked] == ["opinion:o3", "opinion:o2"]
        # the oldest waiting one, and the backlog
        waiting = {"state": {"$in": ["pending", "sending"]}}
        assert deliveries.find_one(waiting, {"created_at": 1}, sort=[("created_at", 1)])[
            "_id"] == "proposal:p1"
        assert deliveries.count_documents(waiting) == 2
