"""Meeting rules and the 履职档案 scoring, pure."""
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.problems import Conflict, Invalid
from services.members import meetings, record
from services.members.meetings import MeetingRules

START = datetime(2026, 3, 10, 9, 0)
MEMBERS = [{"_id": f"m{i}", "status": "active", "role": "member", "sector": "教育界",
            "committees": ["提案委"]} for i in range(4)] + [
    {"_id": "m9", "status": "removed", "role": "member", "sector": "教育界", "committees": []}]


def meeting(days=3, kind="plenary", rules=None):
    data = {"kind": kind, "title": "全体会议", "place": "会议室", "starts_at": START,
            "ends_on": (START + timedelta(days=days - 1)).date(), "invite": {"all": True}}
    doc, _ = meetings.new_meeting(data, meeting_id="mt1", members=MEMBERS,
                                  rules=rules or MeetingRules(), term="第十届")
    return doc


def apply(doc, fields):
    doc = dict(doc, attendees=dict(doc["attendees"]))
    for key, value in fields.items():
        if key.startswith("attendees."):
            doc["attendees"][key.split(".", 1)[1]] = value
        else:
            doc[key] = value
    return doc


def test_invitees_are_active_members_only_and_notice_days_follow_the_kind():
    m = meeting()
    assert m["invited"] == ["m0", "m1", "m2", "m3"]
    assert m["notice_on"] == "2026-03-03"             # plenary: 7 days ahead
    assert meeting(kind="research")["notice_on"] == "2026-03-07"  # others: 3
    assert meetings.notice(m, START.date() - timedelta(days=8)) == ({}, [])
    fields, events = meetings.notice(m, START.date() - timedelta(days=7))
    assert fields == {"notice_sent": 1} and events[0][1]["days_ahead"] == 7


def test_check_in_codes_expire_and_are_replaced():
    m = meeting()
    code, fields = meetings.issue_code(m, "2026-03-10", START, minutes=30, code="ABC234")
    m = apply(m, fields)
    fields, _ = meetings.check_in(m, "m0", None, START + timedelta(minutes=29), code="abc234")
    assert fields["attendees.m0"]["checkins"] == ["2026-03-10"]
    with pytest.raises(Invalid) as exc:
        meetings.check_in(m, "m1", None, START + timedelta(minutes=31), code="ABC234")
    assert "已过期" in exc.value.errors["code"][0]
    _, fields = meetings.issue_code(m, "2026-03-10", START, minutes=30, code="XYZ789")
    m = apply(m, fields)
    with pytest.raises(Invalid):
        meetings.check_in(m, "m1", None, START, code="ABC234")
    with pytest.raises(Invalid):
        meetings.issue_code(m, "2026-03-20", START, minutes=30)


def test_leave_only_before_the_start():
    m = meeting()
    fields, _ = meetings.request_leave(m, "m1", "出差", START - timedelta(minutes=1))
    assert fields["attendees.m1"]["leave"]["state"] == "requested"
    with pytest.raises(Conflict):
        meetings.request_leave(m, "m1", "出差", START)


def test_attendance_two_thirds_of_the_days():
    m = meeting(days=3)
    for member, days in (("m0", ["2026-03-10", "2026-03-11"]), ("m1", ["2026-03-10"])):
        for day in days:
            m = apply(m, meetings.check_in(m, member, day, START, by_staff=True)[0])
    m = apply(m, meetings.request_leave(m, "m2", "病假", START - timedelta(days=1))[0])
    m = apply(m, meetings.decide_leave(m, "m2", True, None, START - timedelta(hours=20))[0])
    fields, events = meetings.close(m, MeetingRules())
    assert fields["attendance"] == {"attended": ["m0"], "leave": ["m2"],
                                    "absent": ["m1", "m3"]}
    half = MeetingRules(attendance_ratio=1 / 3)
    assert meetings.close(m, half)[0]["attendance"]["attended"] == ["m0", "m1"]


def event(etype, payload, seq=1, event_id=None):
    return {"type": etype, "payload": payload, "seq": seq,
            "occurred_at": "2026-05-01T00:00:00+00:00", "event_id": event_id or etype}


EVENTS = [
    event("proposal.submitted", {"proposal_id": "p1", "year": 2026, "lead_member": "a",
                                 "proposers": ["a", "b"]}),
    event("proposal.registered", {"proposal_id": "p1", "year": 2026, "lead_member": "a",
                                  "proposers": ["a", "b"]}, 3),
    event("proposal.imported", {"proposal_id": "p9", "year": 2026, "lead_member": "b",
                                "proposers": ["b"], "submitted": True, "registered": True,
                                "key": True, "excellent": False}),
    event("opinion.adopted", {"opinion_id": "o1", "author_member": "a", "level": "national"}),
    event("meeting.attendance_recorded", {"meeting_id": "mt1", "kind": "plenary",
                                          "year": 2026, "attended": ["a"], "absent": ["b"]}, 5),
    event("meeting.attendance_recorded", {"meeting_id": "mt1", "kind": "plenary",
                                          "year": 2026, "attended": ["a", "b"]}, 7),
    event("meeting.attendance_recorded", {"meeting_id": "mt2", "kind": "research",
                                          "year": 2026, "attended": ["b"]}, 2),
]


def build(events):
    facts = {}
    for e in events:
        for f in record.facts_from_event(e):
            facts[f["_id"]] = record.keep(facts.get(f["_id"]), f)
    out = {}
    for member in ("a", "b"):
        mine = [f for f in facts.values() if f["member_id"] == member]
        out[member] = record.score(member, 2026, mine)
    return out


def test_points_by_hand():
    recs = build(EVENTS)
    # a: registered lead 15 + national adoption 30 + plenary attended 5
    assert recs["a"]["points"] == 50
    # b: registered co-signer 3 + imported registered lead 15 + key 15 + plenary
    #    attended 5 (the later re-close wins over the absence) + research 3
    assert recs["b"]["points"] == 41
    assert recs["b"]["totals"]["activities"] == 2 and recs["b"]["totals"]["proposals"] == 2
    assert record.shortfalls(recs["a"]) == {
        "opinions": {"required": 1, "actual": 0}, "activities": {"required": 3, "actual": 1}}


@settings(max_examples=60, deadline=None)
@given(st.permutations(EVENTS + EVENTS))
def test_any_order_and_duplicates_give_the_same_records(events):
    assert build(events) == build(EVENTS)


def test_shortfalls_read_in_chinese():
    from services.members import record
    assert record.shortfall_text({"proposals": {"required": 1, "actual": 0},
                                  "activities": {"required": 3, "actual": 0}}) == \
        "提案 0/1；活动 0/3"
