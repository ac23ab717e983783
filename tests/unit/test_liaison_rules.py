"""Pure liaison rules: stations, citizen requests, consultations, 社情民意."""
import json
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from services.common.auth import Principal
from services.common.problems import Conflict, Forbidden, Invalid
from services.liaison import citizen, consult, opinions, stations

PLACES = stations.Places.from_config([
    {"code": "1001", "name": "丹朱镇", "villages": [{"code": "1001201", "name": "城南社区"}]}])
NOW = datetime(2026, 5, 6, 9, 0)
RULES = citizen.RequestRules(topics={"教育": ["教育界"]})


def who(*roles, sub="u"):
    return Principal(sub=sub, org="140428", roles=tuple(roles))


def station(members=("m1",), kind="room"):
    doc, events = stations.new_station(
        {"name": "城南议事室", "kind": kind, "place_code": "1001201", "members": list(members)},
        station_id="s1", places=PLACES, org="140428", members_found=set(members) | {"m9"},
        room_minimum=2)
    return dict(doc, seq=len(events)), [t for t, _ in events]


def test_places_know_their_township_and_level():
    assert PLACES.get("1001201")["township"] == "1001"
    assert PLACES.get("1001")["level"] == "township" and PLACES.get("9") is None


def test_a_room_below_two_members_is_reported_and_restored():
    doc, types = station(["m1"])
    assert types == ["station.created", "station.member_assigned", "station.below_minimum"]
    fields, events = stations.assign(doc, "m2", room_minimum=2, active_member=True)
    assert fields["meets_minimum"] == 1
    assert [t for t, _ in events] == ["station.member_assigned", "station.minimum_restored"]
    doc = dict(doc, **fields)
    fields, events = stations.unassign(doc, "m1", room_minimum=2)
    assert [t for t, _ in events] == ["station.member_unassigned", "station.below_minimum"]
    with pytest.raises(Invalid):
        stations.assign(doc, "m3", room_minimum=2, active_member=False)
    with pytest.raises(Conflict):
        stations.assign(doc, "m2", room_minimum=2, active_member=True)
    studio, types = station(["m1"], kind="studio")
    assert "station.below_minimum" not in types and studio["meets_minimum"] == 1


def test_reception_days_only_for_the_station_members_and_not_in_the_past():
    doc, _ = station(["m1", "m2"])
    with pytest.raises(Invalid):
        stations.schedule_reception(doc, {"date": date(2026, 5, 1)}, today=date(2026, 5, 6))
    with pytest.raises(Invalid):
        stations.schedule_reception(doc, {"date": date(2026, 5, 8), "members": ["m7"]},
                                    today=date(2026, 5, 6))
    fields, _ = stations.schedule_reception(doc, {"date": date(2026, 5, 8)},
                                            today=date(2026, 5, 6))
    assert fields["reception_days"][0]["members"] == ["m1", "m2"]


def new_request(contact=None, topic=None):
    doc, _ = citizen.new_request(
        {"category": "appeal", "title": "路灯", "description": "坏了", "contact": contact,
         "topic": topic}, who("citizen", sub="c1"), request_id="r1",
        station={"_id": "s1", "township": "1001", "place_code": "1001201"}, org="140428",
        now=NOW, rules=RULES)
    return dict(doc, seq=1)


def step(r, action, actor, at=NOW, **data):
    fields, events = citizen.act(r, action, data, actor, now=at, rules=RULES,
                                 member_active=True)
    return dict(r, **fields), events


def test_request_roles_and_decline_back_to_dispatch():
    r = new_request()
    staff, m1, m2 = who("station:s1"), who("member:m1"), who("member:m2")
    with pytest.raises(Forbidden):
        step(r, "dispatch", who("station:s2"), member_id="m1")
    r, _ = step(r, "dispatch", staff, member_id="m1")
    with pytest.raises(Forbidden):
        step(r, "accept", m2)
    r, events = step(r, "decline", m1, reason="外出")
    assert r["state"] == "filed" and r["declined_by"] == ["m1"] and r["member_id"] is None
    with pytest.raises(Forbidden):         # no longer theirs: 403 comes before 409
        step(r, "accept", m1)
    with pytest.raises(Conflict) as exc:   # the station may close, not a filed request
        step(r, "close", staff, result="x", resolved=True)
    assert exc.value.extra["allowed_actions"] == ["dispatch"]
    r, _ = step(r, "dispatch", staff, member_id="m2")
    r, _ = step(r, "accept", m2)
    late = NOW + timedelta(days=20)
    r, events = step(r, "close", m2, at=late, result="办好了", resolved=True)
    assert r["on_time"] == 0 and events[0][1]["on_time"] is False
    with pytest.raises(Invalid):
        citizen.check_escalation(r)
    r, _ = step(r, "rate", who("citizen", sub="c1"), score=4)
    assert r["state"] == "rated"


def test_scan_escalates_each_stage_once():
    r = new_request()
    assert citizen.scan(r, NOW + timedelta(hours=23)) == ({}, [])
    fields, events = citizen.scan(r, NOW + timedelta(hours=25))
    assert events[0][1]["stage"] == "dispatch" and events[0][1]["escalate_to"] == "station"
    assert citizen.scan(dict(r, **fields), NOW + timedelta(hours=30)) == ({}, [])


def test_suggestions_rank_station_then_township_by_sector_and_load():
    r = new_request(topic="教育")
    near = [{"_id": "s1", "members": ["a", "b"]}, {"_id": "s2", "members": ["c", "d"]}]
    members = {m: {"name": m, "sector": "教育界" if m in ("b", "d") else "经济界"}
               for m in "abcde"}
    ranked = citizen.suggest_members(r, near, members, {"a": 1}, RULES)
    assert [x["member_id"] for x in ranked] == ["b", "a", "d", "c"]
    assert ranked[1]["open_requests"] == 1 and ranked[1]["score"] == ranked[2]["score"]
    heavy = citizen.suggest_members(r, near, members, {"a": 3}, RULES)
    assert [x["member_id"] for x in heavy] == ["b", "d", "a", "c"]
    assert "e" not in [x["member_id"] for x in ranked]


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_no_event_carries_the_contact_or_description(contact):
    r = new_request(contact=contact + "13800138000")
    r, events = step(r, "dispatch", who("station:s1"), member_id="m1")
    text = json.dumps([citizen.payload(r)] + [e[1] for e in events], ensure_ascii=False)
    assert "13800138000" not in text and "坏了" not in text


def consultation():
    doc, _ = consult.new_consultation(
        {"title": "停车", "source": "citizens", "station_id": "s1"}, who("station:s1"),
        consultation_id="c1", org="140428", station={"_id": "s1"}, members_found={},
        today=date(2026, 5, 6))
    return dict(doc, seq=1)


def test_consultation_steps_and_who_moves_them():
    c = consultation()
    staff, admin = who("station:s1"), who("admin")
    with pytest.raises(Forbidden):
        consult.new_consultation({"title": "x", "source": "members"}, who("station:s1"),
                                 consultation_id="c2", org="1", station=None,
                                 members_found={}, today=date(2026, 5, 6))
    fields, _ = consult.act(c, "advance", {}, staff, today=date(2026, 5, 7))
    c = dict(c, **fields)
    with pytest.raises(Invalid):  # 协商 needs members
        consult.act(dict(c, state="consult"), "advance", {}, staff, today=date(2026, 5, 7))
    with pytest.raises(Forbidden):
        consult.act(dict(c, state="opinions", outcomes=["x"]), "advance", {}, staff,
                    today=date(2026, 5, 7))
    fields, events = consult.act(dict(c, state="consult", members=["m1"]), "advance", {},
                                 staff, today=date(2026, 5, 7))
    assert fields["state"] == "opinions"
    assert [t for t, _ in events] == ["consultation.advanced", "station.activity_held"]
    fields, _ = consult.act(dict(c, state="submitted"), "add_followup",
                            {"item": "x", "owner": "镇政府", "due": date(2026, 6, 1)}, admin,
                            today=date(2026, 5, 7), followup_id="F1")
    with pytest.raises(Conflict):
        consult.act(dict(c, state="implementing", **fields), "advance", {}, admin,
                    today=date(2026, 5, 7))


def opinion(**over):
    doc, _ = opinions.new_opinion({"title": "t", "content": "c"}, who("member:m1"),
                                  opinion_id="o1", org="140428", today=date(2026, 5, 6),
                                  members_found={"m1": {}}, station=None)
    return dict(doc, seq=1, **over)


def oact(o, action, **data):
    fields, events = opinions.act(o, action, data, who("admin"), today=date(2026, 5, 7),
                                  own_level="county", parent_org="140400",
                                  orgs={"province": "140000", "national": "100000"},
                                  issue_no=3, instruction_id="i1")
    return dict(o, **fields), events


def test_opinion_levels_targets_and_versions():
    assert opinions.higher_levels("county") == ("city", "province", "national")
    assert opinions.higher_levels("city") == ("province", "national")
    o = opinion()
    assert o["author_member"] == "m1" and o["versions"][0]["n"] == 1
    with pytest.raises(Invalid):
        opinions.new_opinion({"title": "t", "content": "长" * 1501}, who("member:m1"),
                             opinion_id="o2", org="1", today=date(2026, 5, 6),
                             members_found={"m1": {}}, station=None)
    with pytest.raises(Forbidden):
        opinions.act(o, "accept", {}, who("member:m1"), today=date(2026, 5, 7), own_level="county",
            parent_org="140400", orgs={})
    o, _ = oact(o, "accept")
    o, _ = oact(o, "edit", content="c2")
    assert [v["content"] for v in o["versions"]] == ["c", "c2"]
    o, events = oact(o, "issue")
    assert events[0][1]["issue"] == "《社情民意》2026年第3期"
    o, events = oact(o, "report", level="city")
    assert events[0][1]["target_org"] == "140400"
    o, events = oact(o, "report", level="national")
    assert events[0][1]["target_org"] == "100000"
    with pytest.raises(Conflict):
        oact(o, "report", level="city")
    with pytest.raises(Invalid):
        oact(o, "adopt", level="province")
    o, events = oact(o, "adopt", level="national")
    assert events[0] == ("opinion.adopted", dict(opinions.payload(o), level="national"))


def test_an_overdue_request_goes_to_the_station_then_the_office():
    from datetime import datetime, timedelta
    from services.liaison import citizen
    due = "2026-11-20T10:00:00"
    r = {"_id": "RQ1", "station_id": "s1", "station_name": "王家庄联络站", "state": "dispatched",
         "category": "appeal", "title": "路灯", "member_id": "m1", "year": 2026,
         "due": {"accept": due}, "overdue": [], "channel": "station"}
    late = datetime.fromisoformat(due) + timedelta(hours=1)
    fields, events = citizen.scan(r, late)
    assert [e[1]["escalate_to"] for e in events] == ["station"]
    r = dict(r, **fields)
    assert citizen.scan(r, late + timedelta(hours=2)) == ({}, [])   # once per level
    fields, events = citizen.scan(r, late + timedelta(hours=24))
    assert [e[1]["escalate_to"] for e in events] == ["office"]
    assert citizen.scan(dict(r, **fields), late + timedelta(days=3)) == ({}, [])
    closing = dict(r, state="accepted", due={"close": due}, overdue=[])
    assert [e[1]["escalate_to"] for e in citizen.scan(closing, late)[1]] == ["office"]


def test_station_staff_submit_for_citizens_or_as_themselves_never_as_another_member():
    s, _ = station(members=("m1", "m2"))
    staff = who("station:s1")
    found = {"m1": {}, "m2": {}}

    def submit(actor, **data):
        return opinions.new_opinion(dict({"title": "t", "content": "c", "station_id": "s1"},
                                         **data), actor, opinion_id="o9", org="140428",
                                    today=date(2026, 5, 6), members_found=found, station=s)[0]
    assert submit(staff)["author_member"] is None              # for a citizen
    with pytest.raises(Forbidden):                             # would credit m2's record
        submit(staff, author_member="m2")
    assert submit(who("station:s1", "member:m1"), author_member="m1")["author_member"] == "m1"
    assert submit(who("admin"), author_member="m2")["author_member"] == "m2"


def test_only_the_stations_own_members_take_part_in_its_consultations():
    station = {"_id": "s1", "members": ["m1", "m2"]}
    found = {"m1": {}, "m2": {}, "m9": {}}
    with pytest.raises(Invalid) as refused:
        consult.new_consultation({"title": "停车", "source": "citizens", "station_id": "s1",
                                  "members": ["m9"]}, who("station:s1"), consultation_id="c3",
                                 org="140428", station=station, members_found=found,
                                 today=date(2026, 5, 6))
    assert "不是本站点的委员" in refused.value.errors["members"][0]
    c = dict(consultation(), state="consult")
    staff = who("station:s1")
    with pytest.raises(Invalid) as refused:   # m9 is active, but not of this station
        consult.act(c, "advance", {"members": ["m1", "m9"]}, staff, today=date(2026, 5, 7),
                    members_found=found, station=station)
    assert "m9" in refused.value.errors["members"][0]
    fields, events = consult.act(c, "advance", {"members": ["m1", "m2"]}, staff,
                                 today=date(2026, 5, 7), members_found=found, station=station)
    assert events[-1][1]["members"] == ["m1", "m2"]
