"""Meetings and the 履职档案 through HTTP and events, on a real broker and
Mongo wire server."""
import random
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pymongo
import pytest
from kombu import Connection, Exchange, Producer

from services.common.envelope import make_event
from deploy.demo_data import members as demo
from services.members.service import MembersService
from tests import support
from tests.support import Client, wait_until

pytestmark = pytest.mark.service


def db_of(config):
    return pymongo.MongoClient(config["MONGO_URI"])[config["MONGO_DB_PREFIX"] + "members"]


@pytest.fixture
def members(run_service, config, probe):
    events = probe("members.events")
    run_service(MembersService)
    admin = Client(config, "admin")
    resp = admin.post("/api/v1/members/import", data=demo.roster_csv(demo.members(6)),
                      headers={"Content-Type": "text/csv"})
    assert resp.status_code == 200 and resp.json()["created"] == 6, resp.text
    ids = sorted(m["id"] for m in admin.get("/api/v1/members?limit=10").json()["items"])
    return admin, ids, events


def meeting(admin, starts_at, days=1, kind="plenary", invite=None, title="全体会议"):
    resp = admin.post("/api/v1/meetings", json={
        "kind": kind, "title": title, "place": "县政协会议室",
        "starts_at": starts_at.strftime("%Y-%m-%dT%H:%M"),
        "ends_on": (starts_at.date() + timedelta(days=days - 1)).isoformat(),
        "invite": invite or {"all": True}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def now():
    """The platform's wall clock (meetings are in local time)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None, second=0,
                                                           microsecond=0)


def test_notice_signup_leave_checkin_and_attendance(members, config):
    admin, (a, b, c, d, *_), events = members
    start = now() + timedelta(days=1)
    m = meeting(admin, start, days=3, invite={"members": [a, b, c, d]})
    mid = m["id"]
    assert m["invited"] == sorted([a, b, c, d]) and m["notice_sent"] == 1
    as_ = {x: Client(config, f"member:{x}") for x in (a, b, c, d)}
    assert as_[a].post(f"/api/v1/meetings/{mid}/signup", json={}).status_code == 200
    assert as_[b].post(f"/api/v1/meetings/{mid}/leave", json={"reason": "出差"}).status_code == 200
    assert as_[c].post(f"/api/v1/meetings/{mid}/leave", json={"reason": "有事"}).status_code == 200
    assert admin.post(f"/api/v1/meetings/{mid}/leave/{b}", json={"approve": True}).status_code == 200
    assert admin.post(f"/api/v1/meetings/{mid}/leave/{c}", json={"approve": False}).status_code == 200
    # a member sees only their own attendance line, never the codes
    seen = as_[a].get(f"/api/v1/meetings/{mid}").json()
    assert list(seen["attendees"]) == [a] and "codes" not in seen
    outsider = Client(config, "member:m-other")
    assert outsider.get(f"/api/v1/meetings/{mid}").status_code == 404
    # not closed before it starts
    early = admin.post(f"/api/v1/meetings/{mid}/close", json={})
    assert early.status_code == 409 and early.json()["starts_at"] == m["starts_at"]

    # the day comes: the stored meeting is moved to start at today's midnight
    start = datetime.combine(now().date(), time(0, 0))
    db_of(config)["meetings"].update_one({"_id": mid}, {"$set": {
        "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
        "ends_on": (start.date() + timedelta(days=2)).isoformat()}})
    # a code works only on its own day
    tomorrow = (start.date() + timedelta(days=1)).isoformat()
    later = admin.post(f"/api/v1/meetings/{mid}/codes", json={"day": tomorrow}).json()["code"]
    resp = as_[a].post(f"/api/v1/meetings/{mid}/checkin", json={"code": later})
    assert resp.status_code == 422 and "当天有效" in resp.json()["errors"]["code"][0]

    day1 = start.date().isoformat()
    old = admin.post(f"/api/v1/meetings/{mid}/codes", json={"day": day1}).json()["code"]
    code = admin.post(f"/api/v1/meetings/{mid}/codes", json={"day": day1}).json()["code"]
    resp = as_[a].post(f"/api/v1/meetings/{mid}/checkin", json={"code": old})
    assert resp.status_code == 422 and "code" in resp.json()["errors"]   # replaced code
    assert as_[a].post(f"/api/v1/meetings/{mid}/checkin", json={"code": code}).status_code == 200
    assert as_[c].post(f"/api/v1/meetings/{mid}/checkin", json={"code": code}).status_code == 200
    day2 = (start.date() + timedelta(days=1)).isoformat()
    assert admin.post(f"/api/v1/meetings/{mid}/checkin",
                      json={"member_id": a, "day": day2}).status_code == 200
    resp = admin.post(f"/api/v1/meetings/{mid}/checkin", json={"member_id": a, "day": "2001-01-01"})
    assert resp.status_code == 422 and "day" in resp.json()["errors"]

    closed = admin.post(f"/api/v1/meetings/{mid}/close", json={}).json()
    # a: 2 of 3 days = attended; b: approved leave; c: 1 of 3 days, leave refused; d: absent
    assert closed["attendance"] == {"attended": [a], "leave": [b], "absent": sorted([c, d])}
    assert admin.post(f"/api/v1/meetings/{mid}/close", json={}).status_code == 409

    wait_until(lambda: "meeting.attendance_recorded" in [
        e["type"] for e in events.wait_for(1) if e["aggregate_id"] == mid], what="attendance")
    types = [e["type"] for e in events.received if e["aggregate_id"] == mid]
    assert types[:2] == ["meeting.scheduled", "meeting.notice_due"]
    assert types.count("meeting.leave_decided") == 2 and types.count("meeting.checked_in") == 3
    notice = next(e for e in events.received if e["type"] == "meeting.notice_due")
    assert notice["payload"]["days_ahead"] == 1 and notice["payload"]["invitees"] == sorted(
        [a, b, c, d])
    # attendance reaches the 履职档案 through the event
    year = start.year
    # one event, each member's record updated in turn: wait for both
    wait_until(lambda: admin.get(f"/api/v1/records/{d}?year={year}").json()["points"] == -5
               and admin.get(f"/api/v1/records/{a}?year={year}").json()["points"] == 5,
               what="absence in d's record and attendance in a's")
    rec = admin.get(f"/api/v1/records/{a}?year={year}").json()
    assert rec["totals"]["meetings_attended"] == 1 and rec["points"] == 5
    assert Client(config, f"member:{b}").get(f"/api/v1/records/{a}").status_code == 403


def test_leave_and_sign_up_after_the_start_are_refused(members, config):
    admin, (a, *_), _ = members
    m = meeting(admin, now() - timedelta(hours=1))
    member = Client(config, f"member:{a}")
    resp = member.post(f"/api/v1/meetings/{m['id']}/leave", json={"reason": "临时有事"})
    assert resp.status_code == 409 and resp.json()["starts_at"] == m["starts_at"]
    assert member.post(f"/api/v1/meetings/{m['id']}/signup", json={}).status_code == 409
    resp = member.post(f"/api/v1/meetings/{m['id']}/leave", json={})
    assert resp.status_code == 422 and "reason" in resp.json()["errors"]


def test_bad_meeting_input_gives_field_messages(members, config):
    admin, ids, _ = members
    resp = admin.post("/api/v1/meetings", json={
        "kind": "party", "title": "", "place": "会议室", "starts_at": "明天上午",
        "ends_on": "2026-01-01", "invite": {"members": ["nobody"]}, "extra": 1})
    assert resp.status_code == 422
    assert set(resp.json()["errors"]) >= {"kind", "title", "starts_at", "extra"}
    resp = admin.post("/api/v1/meetings", json={
        "kind": "research", "title": "调研", "place": "某镇", "starts_at": "2026-05-10T09:00",
        "ends_on": "2026-05-09", "invite": {"members": ["nobody"]}})
    assert resp.status_code == 422
    assert set(resp.json()["errors"]) == {"ends_on", "invite.members"}
    assert db_of(config)["meetings"].count_documents({}) == 0


def test_unexcused_plenary_absences_are_flagged(members, config):
    admin, (a, b, *_), events = members
    for i in range(3):
        m = meeting(admin, now() - timedelta(days=10 - i), invite={"members": [a, b]},
                    title=f"第{i + 1}次全体会议")
        admin.post(f"/api/v1/meetings/{m['id']}/checkin", json={
            "member_id": a, "day": m["starts_at"][:10]})
        assert admin.post(f"/api/v1/meetings/{m['id']}/close", json={}).status_code == 200
    flagged = admin.get("/api/v1/meetings/absences").json()["items"]
    assert [(f["member_id"], f["absences"]) for f in flagged] == [(b, 3)]
    wait_until(lambda: any(e["type"] == "member.absence_flagged"
                           for e in events.wait_for(1)), what="absence flag event")
    flag = next(e for e in events.received if e["type"] == "member.absence_flagged")
    assert flag["payload"]["member_id"] == b


# --- the 履职档案 from a scripted year of events ------------------------------------
def scripted_year(a, b, year):
    """Events of other services (and one of this one) for members a and b."""
    def ev(etype, agg, seq, payload):
        return make_event(etype, origin="140428", aggregate_id=agg, seq=seq, payload=payload,
                          actor="test", trace_id=uuid.uuid4().hex)
    p1 = {"proposal_id": "p1", "year": year, "lead_member": a, "proposers": [a, b],
          "state": "submitted", "key": False}
    p2 = {"proposal_id": "p2", "year": year, "lead_member": b, "proposers": [b],
          "state": "submitted", "key": False}
    o1 = {"opinion_id": "o1", "author_member": a, "year": year}
    return [
        ("proposals.events", ev("proposal.submitted", "p1", 3, p1)),
        ("proposals.events", ev("proposal.registered", "p1", 6, dict(p1, state="registered"))),
        ("proposals.events", ev("proposal.key_selected", "p1", 8, dict(p1, key=True))),
        ("proposals.events", ev("proposal.reminder_due", "p1", 9, p1)),   # no fact
        ("proposals.events", ev("proposal.submitted", "p2", 2, p2)),
        ("liaison.events", ev("opinion.submitted", "o1", 1, o1)),
        ("liaison.events", ev("opinion.adopted", "o1", 4, dict(o1, level="city"))),
        ("liaison.events", ev("opinion.adopted", "o1", 6, dict(o1, level="province"))),
        ("liaison.events", ev("opinion.instructed", "o1", 7, dict(
            o1, level="city", instruction_id="i1"))),
        ("liaison.events", ev("request.closed", "r1", 5, {"request_id": "r1",
                                                          "member_id": b, "year": year})),
        ("liaison.events", ev("request.closed", "r2", 5, {"request_id": "r2",
                                                          "member_id": b, "year": year})),
        ("liaison.events", ev("station.activity_held", "s1", 3, {
            "activity_id": "act1", "members": [a, b], "year": year})),
        ("members.events", ev("meeting.attendance_recorded", "mt1", 9, {
            "meeting_id": "mt1", "kind": "plenary", "year": year, "attended": [a],
            "leave": [], "absent": [b]})),
    ]


def publish(amqp_uri, items):
    with Connection(amqp_uri) as conn:
        producer = Producer(conn.channel())
        for exchange, event in items:
            producer.publish(event, exchange=Exchange(exchange, type="topic", durable=True),
                             routing_key=event["type"], declare=[
                                 Exchange(exchange, type="topic", durable=True)],
                             serializer="json", retry=True)


def records_of(config, year):
    return sorted(db_of(config)["records"].find({"year": year}), key=lambda r: r["_id"])


def test_scripted_year_points_match_a_hand_computation_and_replays_agree(
        members, config, infra, run_service):
    admin, (a, b, *_), _ = members
    year = 2026
    items = scripted_year(a, b, year)
    publish(config["AMQP_URI"], items)
    # by hand, with the platform's point table:
    # a: registered lead 15 + key 15 + opinion 1 + city 5 + province 10 + instruction 10
    #    + station activity 2 + plenary attended 5 = 63
    # b: registered co-signer 3 + two requests 2 × 2 + station activity 2 + absent −5 = 4
    expected = {a: 63, b: 4}

    def points():
        recs = {r["member_id"]: r["points"] for r in records_of(config, year)}
        return recs if recs == expected else None
    wait_until(points, timeout=30, what=f"records {expected}")
    rec_a = admin.get(f"/api/v1/records/{a}?year={year}").json()
    assert rec_a["totals"]["proposals"] == 1 and rec_a["totals"]["opinions_adopted"] == 2
    assert rec_a["shortfalls"] == {"activities": {"required": 3, "actual": 2}}
    report = admin.get(f"/api/v1/records/report?year={year}").json()
    assert [r["member_id"] for r in report["ranking"][:2]] == [a, b]
    assert {r["member_id"] for r in report["below_minimums"]} >= {a, b}
    assert report["attendance"]["overall"]["invited"] == 2
    xlsx = admin.get(f"/api/v1/records/report.xlsx?year={year}")
    assert xlsx.status_code == 200
    import io
    from openpyxl import load_workbook
    book = load_workbook(io.BytesIO(xlsx.content))
    ranking = list(book["履职积分排名"].values)
    assert ranking[0][:3] == ("名次", "委员编号", "姓名") and ranking[1][1] == a
    below = {row[0]: row[3] for row in list(book["未达履职要求"].values)[1:]}
    assert below[a] == "活动 2/3"     # in Chinese, not internal keys

    # rebuilding from the stored facts gives the same records
    before = records_of(config, year)
    rebuilt = admin.post(f"/api/v1/records/rebuild?year={year}", json={}).json()
    assert rebuilt["records"] == 2 and records_of(config, year) == before

    # every event twice, shuffled, into an empty record store: the same records
    name = f"t{uuid.uuid4().hex[:10]}"
    vhost = support.create_vhost(infra.broker, name)
    replica = None
    try:
        fresh = support.service_config(infra, prefix=f"{name}_", vhost=vhost)
        # its own container, stopped before its vhost goes away (a container
        # whose vhost is deleted under it reconnects for ever)
        replica = support.start_container(MembersService, fresh)
        twice = items + items
        random.Random(5).shuffle(twice)
        publish(fresh["AMQP_URI"], twice)
        wait_until(lambda: records_of(fresh, year) == before, timeout=30,
                   what="replayed records equal")
        assert db_of(fresh)["facts"].count_documents({}) == db_of(config)["facts"].count_documents({})
    finally:
        if replica is not None:
            replica.stop()
        support.delete_vhost(infra.broker, vhost)


def test_many_concurrent_events_for_one_member_lose_no_update(members, config):
    """Forty facts for one member arrive at once (ten workers apply them in
    parallel): the record counts every one, and equals its rebuild."""
    admin, (a, *_), _ = members
    year = 2026
    items = [("liaison.events", make_event(
        "opinion.submitted", origin="140428", aggregate_id=f"o{i}", seq=1, actor="test",
        payload={"opinion_id": f"o{i}", "author_member": a, "year": year}))
        for i in range(40)]
    publish(config["AMQP_URI"], items)
    wait_until(lambda: db_of(config)["inbox"].count_documents(
        {"state": "done", "_id": {"$regex": "^members.record:"}}) >= 40, timeout=60,
        what="every event applied")
    record = admin.get(f"/api/v1/records/{a}?year={year}").json()
    assert record["totals"]["opinions"] == 40 and record["points"] == 40, record["totals"]
    before = records_of(config, year)
    admin.post(f"/api/v1/records/rebuild?year={year}", json={})
    assert records_of(config, year) == before


def test_a_closed_meeting_is_reopened_to_correct_attendance_with_a_trail(members, config):
    admin, (a, b, *_), events = members
    start = datetime.combine(now().date(), time(0, 0))
    m = meeting(admin, start, invite={"members": [a, b]})
    assert m["term"] == "第十届"   # its invitees' term, not the newest configured (第十一届)
    mid = m["id"]
    assert admin.post(f"/api/v1/meetings/{mid}/checkin", json={"member_id": a}).status_code == 200
    closed = admin.post(f"/api/v1/meetings/{mid}/close", json={}).json()
    assert closed["attendance"]["absent"] == [b]
    year = start.year
    wait_until(lambda: admin.get(f"/api/v1/records/{b}?year={year}").json()["points"] == -5,
               what="b absent in the record")
    # b was there but not checked in: the office reopens, corrects and closes again
    assert admin.post(f"/api/v1/meetings/{mid}/reopen", json={}).status_code == 422
    reopened = admin.post(f"/api/v1/meetings/{mid}/reopen", json={"reason": "补录签到"})
    assert reopened.status_code == 200 and reopened.json()["state"] == "reopened"
    assert admin.post(f"/api/v1/meetings/{mid}/reopen",
                      json={"reason": "again"}).status_code == 409
    assert admin.post(f"/api/v1/meetings/{mid}/checkin", json={"member_id": b}).status_code == 200
    again = admin.post(f"/api/v1/meetings/{mid}/close", json={}).json()
    assert again["attendance"] == {"attended": sorted([a, b]), "leave": [], "absent": []}
    trail = admin.get(f"/api/v1/meetings/{mid}").json()["reopened"]
    assert [(t["by"], t["reason"]) for t in trail] == [("tester", "补录签到")]
    assert trail[0]["attendance_before"]["absent"] == [b]
    wait_until(lambda: admin.get(f"/api/v1/records/{b}?year={year}").json()["points"] == 5,
               what="b's record corrected")
    assert "meeting.reopened" in [e["type"] for e in events.wait_for(1)]


def test_a_record_scored_while_another_fact_landed_is_scored_again(infra):
    """Two events for one member recorded at once (two replicas): the one
    that scored before the other's fact landed finds it when it checks, and
    scores again, so the record ends with both facts. Run against the real
    wire server; the other replica is a write made between the two steps."""
    from services.members.entrypoints import RecordsApi
    client = pymongo.MongoClient(infra.mongo_uri)
    database = client[f"rec_{uuid.uuid4().hex[:8]}"]

    def fact(n, member="m1"):
        return {"_id": f"proposal:p{n}:{member}", "member_id": member, "year": 2026,
                "kind": "proposal_lead", "source": "proposal.submitted", "seq": 1, "ref": f"p{n}"}

    class OtherReplicaMeanwhile:
        """The database, where the other replica stores its fact right after
        this one wrote records for the first time."""
        def __init__(self, db):
            self.db, self.landed = db, False

        def __getitem__(self, name):
            collection = self.db[name]
            if name != "records" or self.landed:
                return collection
            outer = self

            class Records:
                def bulk_write(self, ops, **kw):
                    result = collection.bulk_write(ops, **kw)
                    outer.landed = True
                    outer.db["facts"].insert_one(fact(2))
                    return result
            return Records()

    api = RecordsApi()
    api.config, api.db = {}, OtherReplicaMeanwhile(database)
    try:
        api.store_facts([fact(1), fact(3, member="m2")])
        assert api.db.landed
        one, two = (database.records.find_one({"_id": f"{m}:2026"}) for m in ("m1", "m2"))
        assert one["totals"]["proposals"] == 2 and two["totals"]["proposals"] == 1
    finally:
        client.drop_database(database.name)
