"""Stations, citizen requests, consultations and 社情民意 through HTTP, with the
members and proposals services running, on a real broker and Mongo wire server."""
import json
import logging
from datetime import datetime, timedelta

import pymongo
import pytest

from services.liaison.service import LiaisonService
from deploy.demo_data import members as demo
from services.members.service import MembersService
from services.proposals.service import ProposalsService
from tests.support import Client, wait_until, with_port

pytestmark = pytest.mark.service

CONTACT = "张大娘 13800138000"
PHONE = "13800138000"
TOWN, VILLAGE, OTHER_VILLAGE = "140428100", "140428100201", "140428100202"


def liaison_db(config):
    return pymongo.MongoClient(config["MONGO_URI"])[config["MONGO_DB_PREFIX"] + "liaison"]


class County:
    def __init__(self, run_service, config, probe):
        self.config = config
        self.events = probe("liaison.events")
        self.members_conf = with_port(config)
        self.proposals_conf = with_port(config)
        run_service(MembersService, self.members_conf)
        run_service(ProposalsService, self.proposals_conf)
        run_service(LiaisonService, config)
        self.members_admin = Client(self.members_conf, "admin")
        resp = self.members_admin.post("/api/v1/members/import",
                                       data=demo.roster_csv(demo.members(8)),
                                       headers={"Content-Type": "text/csv"})
        assert resp.status_code == 200 and resp.json()["created"] == 8, resp.text
        self.ids = sorted(m["id"] for m in self.members_admin.get(
            "/api/v1/members?limit=20").json()["items"])
        self.admin = Client(config, "admin")
        self.db = liaison_db(config)

    def station(self, sid, kind="room", place=VILLAGE, members=()):
        resp = self.admin.post("/api/v1/stations", json={
            "id": sid, "name": f"{sid}议事室", "kind": kind, "place_code": place,
            "members": list(members)})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def staff(self, sid):
        return Client(self.config, f"station:{sid}", sub=f"staff-{sid}")

    def member(self, mid):
        return Client(self.config, f"member:{mid}", sub=f"user-{mid}")

    def act(self, client, kind, doc_id, action, expect=200, **data):
        resp = client.post(f"/api/v1/{kind}/{doc_id}/actions/{action}", json=data)
        assert resp.status_code == expect, (action, resp.status_code, resp.text)
        return resp.json()


@pytest.fixture
def county(run_service, config, probe):
    return County(run_service, config, probe)


def test_stations_one_plus_two_rule_reception_days_and_the_member_side(county, config):
    a, b, c = county.ids[:3]
    room = county.station("room1", members=[a])
    assert room["meets_minimum"] is False and room["minimum"] == 2
    resp = county.admin.post("/api/v1/stations/room1/members", json={"member_id": "nobody"})
    assert resp.status_code == 422 and "member_id" in resp.json()["errors"]
    resp = county.admin.post("/api/v1/stations/room1/members", json={"member_id": b})
    assert resp.status_code == 200 and resp.json()["meets_minimum"] is True
    types = [e["type"] for e in county.events.wait_for(5)]
    assert types == ["station.created", "station.member_assigned", "station.below_minimum",
                     "station.member_assigned", "station.minimum_restored"]
    # falling below 1+2+N again is reported
    assert county.admin.delete(f"/api/v1/stations/room1/members/{b}").status_code == 200
    types = [e["type"] for e in county.events.wait_for(7)][5:]
    assert types == ["station.member_unassigned", "station.below_minimum"]
    listed = county.admin.get("/api/v1/stations?below_minimum=1").json()["items"]
    assert [s["id"] for s in listed] == ["room1"]

    # the member side shows 包联 from the events
    county.station("studio1", kind="studio", place=TOWN, members=[a, c])
    assert [s["id"] for s in county.member(a).get(
        f"/api/v1/members/{a}/stations").json()["items"]] == ["room1", "studio1"]
    wait_until(lambda: county.members_admin.get(f"/api/v1/members/{a}").json()["stations"]
               == ["room1", "studio1"], what="members shows the stations")

    # reception days by the station's staff only; other org refused
    day = (datetime.now() + timedelta(days=3)).date().isoformat()
    resp = county.staff("studio1").post("/api/v1/stations/studio1/reception-days",
                                        json={"date": day, "topic": "委员接待日"})
    assert resp.status_code == 201 and resp.json()["reception_days"][0]["members"] == [a, c]
    assert county.staff("room1").post("/api/v1/stations/studio1/reception-days",
                                      json={"date": day}).status_code == 403
    assert Client(config, "admin", org="140400").get("/api/v1/stations").status_code == 403
    resp = county.admin.post("/api/v1/stations", json={"name": "x", "kind": "hall",
                                                       "place_code": "999"})
    assert resp.status_code == 422 and set(resp.json()["errors"]) == {"kind"}
    resp = county.admin.post("/api/v1/stations", json={"name": "x", "kind": "room",
                                                       "place_code": "999"})
    assert resp.status_code == 422 and set(resp.json()["errors"]) == {"place_code"}


def test_request_filed_dispatched_declined_redispatched_accepted_closed_rated(
        county, config, caplog):
    caplog.set_level(logging.INFO)  # the level the platform logs at
    a, b, c, d = county.ids[:4]
    county.station("room1", members=[a, b])
    county.station("room2", place=OTHER_VILLAGE, members=[c])
    citizen = Client(config, "citizen", sub="citizen-42")
    staff, other_staff = county.staff("room1"), county.staff("room2")

    resp = citizen.post("/api/v1/requests", json={
        "station_id": "room1", "category": "appeal", "topic": "道路设施",
        "title": "村口路灯不亮", "description": "村口三盏路灯坏了两个月", "contact": CONTACT})
    assert resp.status_code == 201, resp.text
    rid = resp.json()["id"]
    assert "contact" not in resp.json() and resp.json()["has_contact"] is True
    assert staff.get(f"/api/v1/requests/{rid}").json()["contact"] == CONTACT
    assert "contact" not in county.admin.get(f"/api/v1/requests/{rid}").json()
    assert other_staff.get(f"/api/v1/requests/{rid}").status_code == 404

    ranked = staff.get(f"/api/v1/requests/{rid}/suggestions").json()["items"]
    assert {r["member_id"] for r in ranked[:2]} == {a, b}
    assert ranked[-1]["member_id"] == c and d not in {r["member_id"] for r in ranked}
    assert citizen.post(f"/api/v1/requests/{rid}/actions/dispatch",
                        json={"member_id": a}).status_code == 403
    county.act(staff, "requests", rid, "dispatch", member_id=a)
    assert county.member(b).post(f"/api/v1/requests/{rid}/actions/accept",
                                 json={}).status_code == 404  # not theirs: not visible
    county.act(county.member(a), "requests", rid, "decline", reason="本周外出")
    assert a not in {r["member_id"] for r in staff.get(
        f"/api/v1/requests/{rid}/suggestions").json()["items"]}
    county.act(staff, "requests", rid, "dispatch", member_id=b)
    assert "contact" not in county.member(b).get(f"/api/v1/requests/{rid}").json()
    county.act(county.member(b), "requests", rid, "accept")
    conflict = county.member(b).post(f"/api/v1/requests/{rid}/actions/accept", json={})
    assert conflict.status_code == 409 and conflict.json()["current_state"] == "accepted"
    county.act(county.member(b), "requests", rid, "close", result="已联系供电所修复",
               resolved=True)
    rated = county.act(citizen, "requests", rid, "rate", score=5, comment="很满意")
    assert rated["state"] == "rated" and rated["on_time"] == 1

    events = county.events.wait_for(13)  # six of the two stations, seven of the request
    mine = [e for e in events if e["aggregate_id"] == rid]
    assert [e["type"] for e in mine] == [
        "request.filed", "request.dispatched", "request.declined", "request.dispatched",
        "request.accepted", "request.closed", "request.rated"]
    assert mine[5]["payload"]["member_id"] == b
    # the contact is in no event, no log line and no ledger
    assert PHONE not in json.dumps(events, ensure_ascii=False)
    assert PHONE not in caplog.text
    ledger = county.admin.get("/api/v1/ledger?station=room1")
    assert ledger.json()["count"] == 1 and PHONE not in ledger.text
    assert county.member(b).get(f"/api/v1/ledger?member={b}").json()["count"] == 1
    assert county.member(b).get("/api/v1/ledger?station=room1").status_code == 403
    xlsx = staff.get("/api/v1/ledger.xlsx?station=room1")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    figures = county.admin.get("/api/v1/liaison/statistics").json()["requests"]
    assert figures["by_state"]["rated"] == 1 and figures["on_time_rate"] == 1.0
    assert figures["by_station"][0]["average_rating"] == 5.0


def test_untouched_requests_are_escalated_once_per_stage(county, config):
    county.station("room1", members=county.ids[:2])
    rid = county.staff("room1").post("/api/v1/requests", json={
        "station_id": "room1", "category": "wish", "title": "想要一批图书",
        "description": "村里孩子想看书"}).json()["id"]
    later = (datetime.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert county.admin.post(f"/api/v1/requests/scan?now={later}", json={}).json()[
        "overdue"] == 1
    assert county.admin.post(f"/api/v1/requests/scan?now={later}", json={}).json()[
        "overdue"] == 0
    doc = county.admin.get(f"/api/v1/requests/{rid}").json()
    assert [o.split(":")[0] for o in doc["overdue"]] == ["dispatch"]
    events = county.events.wait_for(5)
    overdue = [e for e in events if e["type"] == "request.overdue"]
    assert len(overdue) == 1 and overdue[0]["payload"]["escalate_to"] == "station"
    assert county.admin.post("/api/v1/requests/scan?now=soon", json={}).status_code == 422


def test_consultation_through_the_seven_steps(county):
    a, b = county.ids[:2]
    county.station("room1", members=[a, b])
    staff = county.staff("room1")
    resp = county.member(a).post("/api/v1/consultations", json={
        "title": "村内停车难问题", "source": "members", "station_id": "room1"})
    assert resp.status_code == 201, resp.text
    cid = resp.json()["id"]
    assert resp.json()["proposed_by"] == a and resp.json()["state"] == "topic"
    assert county.member(a).post(f"/api/v1/consultations/{cid}/actions/advance",
                                 json={}).status_code == 403
    # read by the office, its station and its members only (like 社情民意)
    outsider, other_staff = county.member(county.ids[2]), county.staff("room9")
    for client in (outsider, other_staff):
        assert client.get(f"/api/v1/consultations/{cid}").status_code == 404
        assert client.get("/api/v1/consultations").json()["items"] == []
    for role in ("citizen", "unit:jyj"):
        assert Client(county.config, role).get("/api/v1/consultations").status_code == 403
        assert Client(county.config, role).get(
            f"/api/v1/consultations/{cid}").status_code == 404
    assert county.member(a).get(f"/api/v1/consultations/{cid}").status_code == 200
    assert staff.get("/api/v1/consultations").json()["items"][0]["id"] == cid
    county.act(staff, "consultations", cid, "advance")                       # → 调研
    county.act(staff, "consultations", cid, "advance", members=[a, b],
               others=[{"name": "村支书", "role": "村党支部"}])               # → 协商
    county.act(staff, "consultations", cid, "advance",
               outcomes=["划定临时停车位 40 个"])                             # → 形成意见
    assert staff.post(f"/api/v1/consultations/{cid}/actions/advance",
                      json={}).status_code == 403  # 报送 is the office's
    county.act(county.admin, "consultations", cid, "advance")               # → 报送
    county.act(county.admin, "consultations", cid, "add_followup", item="施划停车位",
               owner="镇政府", due="2026-12-31")
    county.act(county.admin, "consultations", cid, "advance")               # → 督促落实
    blocked = county.admin.post(f"/api/v1/consultations/{cid}/actions/advance", json={})
    assert blocked.status_code == 409 and blocked.json()["open_followups"] == ["F1"]
    county.act(staff, "consultations", cid, "complete_followup", followup_id="F1",
               note="已完成")
    county.act(county.admin, "consultations", cid, "advance")               # → 反馈
    resp = county.admin.post(f"/api/v1/consultations/{cid}/actions/advance", json={})
    assert resp.status_code == 422 and "feedback" in resp.json()["errors"]
    done = county.act(county.admin, "consultations", cid, "advance", feedback="群众满意")
    assert done["state"] == "closed" and [s["state"] for s in done["steps"]] == [
        "topic", "research", "consult", "opinions", "submitted", "implementing", "feedback",
        "closed"]
    resp = county.admin.post(f"/api/v1/consultations/{cid}/actions/advance", json={})
    assert resp.status_code == 409 and resp.json()["current_state"] == "closed"
    events = county.events.wait_for(15)
    held = [e for e in events if e["type"] == "station.activity_held"]
    assert len(held) == 1 and held[0]["payload"]["members"] == [a, b]
    figures = county.admin.get("/api/v1/liaison/statistics").json()["consultations"]
    assert figures["held"] == 1 and figures["closed"] == 1
    assert figures["followups"] == figures["followups_closed"] == 1


def test_opinion_submitted_edited_issued_reported_adopted_credits_the_author(county, probe):
    a = county.ids[0]
    author = county.member(a)
    resp = author.post("/api/v1/opinions", json={"title": "关于农村留守老人助餐的建议",
                                                 "content": "长" * 1501})
    assert resp.status_code == 422 and "content" in resp.json()["errors"]
    resp = author.post("/api/v1/opinions", json={"title": "关于农村留守老人助餐的建议",
                                                 "content": "部分村留守老人吃饭难。"})
    assert resp.status_code == 201, resp.text
    oid = resp.json()["id"]
    assert author.post(f"/api/v1/opinions/{oid}/actions/accept", json={}).status_code == 403
    county.act(county.admin, "opinions", oid, "accept")
    edited = county.act(county.admin, "opinions", oid, "edit",
                        content="部分村留守老人吃饭难，建议建设村级老年助餐点。")
    assert [v["n"] for v in edited["versions"]] == [1, 2]
    assert edited["versions"][0]["content"] == "部分村留守老人吃饭难。"
    issued = county.act(county.admin, "opinions", oid, "issue")
    assert issued["issue"]["label"].startswith("《社情民意》") and issued["issue"]["number"] == 1
    up = county.act(county.admin, "opinions", oid, "report", level="city")
    assert up["reported"]["city"]["target_org"] == "140400"
    county.act(county.admin, "opinions", oid, "report", level="province")
    resp = county.admin.post(f"/api/v1/opinions/{oid}/actions/report", json={"level": "county"})
    assert resp.status_code == 422
    resp = county.admin.post(f"/api/v1/opinions/{oid}/actions/adopt", json={"level": "national"})
    assert resp.status_code == 422  # never reported there
    county.act(county.admin, "opinions", oid, "adopt", level="city")
    county.act(county.admin, "opinions", oid, "instruct", level="province", leader="副省长")
    events = county.events.wait_for(8)
    assert [e["type"] for e in events] == [
        "opinion.submitted", "opinion.accepted", "opinion.edited", "opinion.issued",
        "opinion.reported", "opinion.reported", "opinion.adopted", "opinion.instructed"]
    assert events[5]["payload"]["target_org"] == "140000"
    assert all(e["payload"]["author_member"] == a for e in events)
    # the report to the parent city also made a linked event; with no link set
    # up here it waits in the outbox (the local events above went out)…
    # (the relay settles each local event just after the broker confirmed it)
    outbox = wait_until(lambda: (lambda o: o if [e["type"] for e in o.values()] == [
        "opinion.forwarded"] else None)(county.db["opinions"].find_one({"_id": oid})[
            "_outbox"]), timeout=30, what="only the linked event left in the outbox")
    assert next(iter(outbox.values()))["link"] == {"to": "140400", "via": "zhzx.up"}
    # …and goes as soon as the link exchange has a route for the city
    linked = probe("zhzx.up", "140400.opinion.#")
    forwarded = linked.wait_for(1, timeout=30)[0]
    assert forwarded["type"] == "opinion.forwarded" and "link" not in forwarded
    assert forwarded["payload"]["content"] == edited["content"] and forwarded["origin"] == "140428"
    wait_until(lambda: not county.db["opinions"].find_one({"_id": oid}).get("_pending"),
               what="outbox drained")
    figures = county.admin.get("/api/v1/liaison/statistics").json()["opinions"]
    assert figures["reported"] == {"city": 1, "province": 1, "national": 0}
    assert figures["adopted"]["city"] == 1 and figures["instructions"] == 1
    assert figures["instructed"] == {"county": 0, "city": 0, "province": 1, "national": 0}
    # credited in the 履职档案: submitted 1 + issued 2 + city adoption 5 + instruction 10
    year = datetime.now().year
    wait_until(lambda: county.members_admin.get(f"/api/v1/records/{a}?year={year}").json()
               .get("points") == 18, timeout=30, what="record of the author")


def test_removed_member_is_unassigned_and_their_requests_go_back_to_dispatch(county):
    a, b = county.ids[:2]
    county.station("room1", members=[a, b])
    staff = county.staff("room1")
    rid = staff.post("/api/v1/requests", json={
        "station_id": "room1", "category": "service", "title": "法律咨询",
        "description": "宅基地纠纷"}).json()["id"]
    county.act(staff, "requests", rid, "dispatch", member_id=a)
    county.act(county.member(a), "requests", rid, "accept")
    resp = county.members_admin.post(f"/api/v1/members/{a}/end", json={
        "status": "removed", "reason": "依章程撤销委员资格", "ended_on": "2026-11-01"})
    assert resp.status_code == 200, resp.text
    wait_until(lambda: county.admin.get(f"/api/v1/requests/{rid}").json()["state"] == "filed",
               what="request back to dispatch")
    station = county.admin.get("/api/v1/stations/room1").json()
    assert station["members"] == [b] and station["meets_minimum"] is False
    # in order per aggregate (the outbox orders each aggregate's events, not
    # the events of different aggregates)
    at_station = [e["type"] for e in county.events.wait_for(
        5, where=lambda e: e["aggregate_id"] == "room1")]
    assert at_station[-2:] == ["station.member_unassigned", "station.below_minimum"]
    of_request = [e["type"] for e in county.events.wait_for(
        4, where=lambda e: e["aggregate_id"] == rid)]
    assert of_request[-1] == "request.returned_to_dispatch"
    resp = staff.post(f"/api/v1/requests/{rid}/actions/dispatch", json={"member_id": a})
    assert resp.status_code == 422 and "member_id" in resp.json()["errors"]


def test_unresolved_requests_become_an_opinion_or_a_proposal_draft(county):
    a, b = county.ids[:2]
    county.station("room1", members=[a, b])
    staff = county.staff("room1")
    ids = []
    for title in ("小区供暖不热", "农村客运班次少"):
        rid = staff.post("/api/v1/requests", json={
            "station_id": "room1", "category": "appeal", "title": title,
            "description": "多次反映未解决"}).json()["id"]
        county.act(staff, "requests", rid, "dispatch", member_id=a)
        county.act(county.member(a), "requests", rid, "accept")
        ids.append(rid)
    to_opinion = county.act(county.member(a), "requests", ids[0], "escalate", to="opinion",
                            note="建议全面排查供暖管网")
    oid = to_opinion["escalation"]["target_id"]
    opinion = county.admin.get(f"/api/v1/opinions/{oid}").json()
    assert opinion["source_request"] == ids[0] and opinion["author_member"] == a
    county.act(county.member(a), "requests", ids[1], "close", result="已协调但未彻底解决",
               resolved=False)
    to_proposal = county.act(staff, "requests", ids[1], "escalate", to="proposal")
    pid = to_proposal["escalation"]["target_id"]
    proposals = Client(county.proposals_conf, "admin")
    draft = wait_until(lambda: (lambda r: r.status_code == 200 and r.json())(
        proposals.get(f"/api/v1/proposals/{pid}")), what="draft proposal")
    assert draft["state"] == "draft" and draft["lead_member"] == a
    assert draft["source"]["request_id"] == ids[1]


def test_bad_input_changes_nothing_and_emits_nothing(county, config):
    county.station("room1", members=county.ids[:2])
    staff = county.staff("room1")
    before = county.db["requests"].count_documents({})
    cases = [
        ({"station_id": "room1", "category": "gift", "title": "x", "description": "y"},
         {"category"}),
        ({"station_id": "room1", "category": "wish", "title": "长" * 51, "description": "y"},
         {"title"}),
        ({"station_id": "nope", "category": "wish", "title": "x", "description": "y"},
         {"station_id"}),
        ({"station_id": "room1", "category": "wish", "title": "x"}, {"description"}),
        ({"station_id": "room1", "category": "wish", "title": "x", "description": "y",
          "topic": "星际旅行"}, {"topic"}),
    ]
    for body, fields in cases:
        resp = staff.post("/api/v1/requests", json=body)
        assert resp.status_code == 422, resp.text
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert set(resp.json()["errors"]) == fields, resp.json()
    assert county.db["requests"].count_documents({}) == before
    resp = county.admin.post("/api/v1/opinions", json={"title": "t", "content": "c",
                                                       "author_member": "nobody"})
    assert resp.status_code == 422 and "author_member" in resp.json()["errors"]
    resp = county.admin.post("/api/v1/consultations", json={"title": "t", "source": "boss"})
    assert resp.status_code == 422 and "source" in resp.json()["errors"]
    # the next event on the exchange is the next valid change's
    county.station("room9", kind="studio", place=TOWN, members=county.ids[:1])
    events = county.events.wait_for(5)
    assert [e["type"] for e in events][3:] == ["station.created", "station.member_assigned"]


def test_demo_year_imports_once_and_statistics_match_the_records(county, config):
    from services.common.config import platform_data
    from deploy.demo_data import liaison as liaison_demo
    today = datetime.now().date()
    places = platform_data("places", "140428", {})
    station_list = liaison_demo.stations(places[:3], county.ids)
    for body in station_list:
        assert county.admin.post("/api/v1/stations", json=body).status_code == 201
    records = (liaison_demo.requests(station_list, year=today.year, until=today, count=60)
               + liaison_demo.consultations(station_list, year=today.year, until=today)
               + liaison_demo.opinions(county.ids, station_list, year=today.year,
                                       until=today))
    # a year of records in one request: minutes on a loaded machine
    report = county.admin.post("/api/v1/liaison/import", json={"records": records},
                               timeout=300).json()
    assert report["errors"] == [] and report["imported"] == len(records)
    again = county.admin.post("/api/v1/liaison/import", json={"records": records},
                              timeout=300).json()
    assert again["imported"] == 0 and again["skipped"] == len(records)

    def last_level(rec, action):
        return {a["data"]["level"] for a in rec["actions"] if a["action"] == action}
    items = [r for r in records if r["kind"] == "opinion"]
    figures = county.admin.get(f"/api/v1/liaison/statistics?year={today.year}").json()
    assert figures["opinions"]["collected"] == len(items)
    assert figures["opinions"]["reported"] == {
        lv: sum(1 for r in items if lv in last_level(r, "report"))
        for lv in ("city", "province", "national")}
    assert figures["opinions"]["adopted"]["province"] == sum(
        1 for r in items if "province" in last_level(r, "adopt"))
    reqs = [r for r in records if r["kind"] == "request"]
    assert figures["requests"]["by_state"]["rated"] == sum(
        1 for r in reqs if r["actions"] and r["actions"][-1]["action"] == "rate")
    assert figures["requests"]["total"] == len(reqs)
    # a live issue continues the numbering after the imported issues
    oid = county.admin.post("/api/v1/opinions", json={
        "title": "t", "content": "c", "author_member": county.ids[0]}).json()["id"]
    county.act(county.admin, "opinions", oid, "accept")
    issued = county.act(county.admin, "opinions", oid, "issue")
    assert issued["issue"]["number"] == max(
        a["data"]["issue_no"] for r in items for a in r["actions"] if a["action"] == "issue") + 1


def test_activities_only_at_active_stations_on_days_that_have_come(county):
    a, b = county.ids[:2]
    county.station("room7", members=[a, b])
    staff = county.staff("room7")
    today = datetime.now().date()
    held = staff.post("/api/v1/stations/room7/activities", json={
        "title": "协商议事", "date": today.isoformat(), "members": [a, b]})
    assert held.status_code == 201, held.text
    future = staff.post("/api/v1/stations/room7/activities", json={
        "title": "协商议事", "date": (today + timedelta(days=2)).isoformat(), "members": [a]})
    assert future.status_code == 422 and "date" in future.json()["errors"]
    long_ago = staff.post("/api/v1/stations/room7/activities", json={
        "title": "协商议事", "date": f"{today.year - 3}-05-01", "members": [a]})
    assert long_ago.status_code == 422 and "date" in long_ago.json()["errors"]
    county.station("room8", members=[a])       # below 1+2+N
    assert county.admin.patch("/api/v1/stations/room8", json={"active": False}).status_code == 200
    closed = county.staff("room8").post("/api/v1/stations/room8/activities", json={
        "title": "协商议事", "date": today.isoformat(), "members": [a]})
    assert closed.status_code == 409, closed.text
    # a deactivated station is in no figure and needs no members
    figures = county.admin.get("/api/v1/liaison/statistics").json()["stations"]
    assert figures["total"] == 1 and figures["below_minimum"] == []
    assert county.admin.get("/api/v1/stations?below_minimum=1").json()["items"] == []
