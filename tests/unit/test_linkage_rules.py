"""三级联动 rules, pure: forwarded proposals, tasks, the roster roll-up, the
platform's linked counties and the numbering of linked events."""
from datetime import date

import pytest

from services.common.auth import Principal
from services.common.config import Identity
from services.common.outbox import Change
from tests import fakes  # noqa: F401  registers the x.* test event types
from services.common.problems import Conflict, Invalid
from services.liaison import tasks
from services.members import domain as members
from services.proposals import domain
from services.proposals.domain import Actor, Context, Rules

TODAY = date(2026, 11, 26)
OFFICE = Principal(sub="office", org="140428", roles=("admin",))


def under_review():
    doc, _ = domain.new_proposal(
        {"kind": "member", "type": "interim", "lead_member": "m1", "title": "关于城际公交的建议",
         "situation": "s", "analysis": "a", "suggestions": "g", "category": "livelihood"},
        Actor.of("office", ["admin"]), proposal_id="140428-p1", org="140428", today=TODAY,
        members={"m1": {"status": "active"}})
    return dict(doc, state="under_review", seq=4,
                review={"stage": "proposed", "proposed": {"decision": "forward",
                                                          "reason": "跨县区"}})


def test_forwarding_needs_a_parent_and_a_reason_and_links_both_ways():
    p = under_review()
    admin = Actor.of("office", ["admin"])
    with pytest.raises(Invalid) as exc:
        domain.act(p, "decide", {}, admin, Rules(), TODAY, Context())
    assert "decision" in exc.value.errors
    with pytest.raises(Invalid) as exc:
        domain.act(p, "decide", {"reason": ""}, admin, Rules(), TODAY,
                   Context(parent_org="140400"))
    fields, events = domain.act(p, "decide", {}, admin, Rules(), TODAY,
                                Context(parent_org="140400"))
    assert fields["state"] == "forwarded" and fields["closed_at"] == TODAY.isoformat()
    assert fields["forwarded"] == {"to": "140400", "on": "2026-11-26", "reason": "跨县区",
                                   "proposal_id": "140400-140428-p1"}
    assert [t for t, _ in events] == ["proposal.forwarded"]
    body = domain.forward_payload(dict(p, **fields), {"m1": "王建国"})
    assert body["proposer"] == "王建国" and body["reason"] == "跨县区"
    copy, events = domain.received(body, origin="140428", org="140400", today=TODAY)
    assert copy["_id"] == "140400-140428-p1" and copy["kind"] == "linked"
    assert copy["state"] == "submitted" and copy["source"]["proposal_id"] == "140428-p1"
    assert domain.evaluators(copy) == [domain.COLLECTIVE]
    assert [t for t, _ in events] == ["proposal.received"]


def test_feedback_only_when_something_shown_changes_and_never_goes_back():
    copy, _ = domain.received({"proposal_id": "140428-p1", "title": "t", "proposer": "王"},
                              origin="140428", org="140400", today=TODAY)
    answered = dict(copy, state="answered", answers=[{"round": 1, "category": "A", "text": "x",
                                                      "unit": "u", "on": "2026-11-20",
                                                      "released": 0}])
    assert domain.feedback(dict(answered, state="in_handling"), answered, {}) is not None
    assert domain.feedback(answered, dict(answered, overdue=1), {}) is None
    released = dict(answered, state="awaiting_evaluation",
                    answers=[dict(answered["answers"][0], released=1)])
    body = domain.feedback(answered, released, {})
    assert body["answer"]["category"] == "A" and body["proposal_id"] == "140428-p1"
    original = dict(under_review(), state="forwarded", upstream={"state": "assigned", "seq": 9})
    assert domain.upstream_change(original, body, 8) == ({}, [])
    fields, events = domain.upstream_change(original, body, 10)
    assert fields["upstream"]["state"] == "awaiting_evaluation" and fields["upstream"]["seq"] == 10
    assert [t for t, _ in events] == ["proposal.upstream_progressed"]


def test_a_task_goes_to_linked_counties_only_and_completes_when_all_reported():
    children = {"140428": "长子县", "140426": "黎城县"}
    data = {"kind": "research", "title": "调研", "content": "c", "due_on": date(2026, 12, 20)}
    with pytest.raises(Invalid) as exc:
        tasks.new_task(dict(data, targets=["140999"], due_on=date(2026, 1, 1)), task_id="T1",
                       org="140400", children=children, today=TODAY)
    assert set(exc.value.errors) == {"targets", "due_on"}
    with pytest.raises(Invalid):
        tasks.new_task(data, task_id="T1", org="140400", children={}, today=TODAY)
    task, _, linked = tasks.new_task(data, task_id="T1", org="140400", children=children,
                                     today=TODAY)
    assert sorted(to for _, _, to in linked) == ["140426", "140428"]

    copy, _ = tasks.received(dict(linked[0][1]), origin="140400", org="140428", today=TODAY)
    assert tasks.FLOW.check(copy, "accept", OFFICE) == "accepted"
    with pytest.raises(Invalid):
        tasks.act(copy, "report", {"summary": "s", "completed_on": date(2026, 12, 1)},
                  today=TODAY)
    fields, _, up = tasks.act(copy, "report", {"summary": "完成"}, today=TODAY)
    assert fields["state"] == "reported" and up[0][1]["on_time"] is True
    with pytest.raises(Conflict):
        tasks.FLOW.check(dict(copy, **fields), "report", OFFICE)

    fields, events = tasks.progressed(task, "140428", up[0][1])
    assert fields["targets"]["140428"]["state"] == "reported" and "state" not in fields
    assert tasks.progressed(dict(task, **fields), "140428", up[0][1]) == ({}, [])
    assert tasks.progressed(task, "140999", up[0][1]) == ({}, [])
    task = dict(task, **fields)
    fields, events = tasks.progressed(task, "140426", dict(up[0][1], summary="好"))
    assert fields["state"] == "completed" and events[-1][0] == "task.completed"
    view = tasks.view(dict(task, **fields), date(2027, 1, 1))
    assert view["overdue"] is False and view["kind_label"] == "联合调研"


def test_roster_rollup_counts_a_person_on_two_committees_once():
    def m(org, person, **kw):
        return dict({"org": org, "person_id": person, "status": "active", "sector": "教育界",
                     "party": "cpc", "committees": ["提案委"], "role": "member"}, **kw)
    own = [m("140400", "p1"), m("140400", "p2", status="removed")]
    linked = [m("140428", "p1", sector="经济界"), m("140428", "p3", committees=["提案委", "文史委"])]
    out = members.rollup("140400", "长治市", own, linked, (("140428", "长子县"),
                                                          ("140426", "黎城县")))
    by_org = {p["org"]: p for p in out["platforms"]}
    assert by_org["140400"]["active"] == 1
    assert by_org["140428"]["by_committee"] == {"提案委": 2, "文史委": 1}
    assert by_org["140428"]["by_sector"] == {"经济界": 1, "教育界": 1}
    assert by_org["140426"]["active"] == 0
    assert out["people"] == {"memberships": 3, "persons": 2, "on_several_committees": 1}
    entry = members.roster_entry({"_id": "x", "phone": "139", "id_number": "1404", "name": "王"})
    assert "phone" not in entry and "id_number" not in entry and entry["member_id"] == "x"


def test_linked_counties_and_linked_event_numbering():
    ident = Identity.from_config({"ORG_CODE": "140400", "ORG_LEVEL": "city",
                                  "CHILD_ORGS": "140428=长子县, 140426"})
    assert ident.children == (("140428", "长子县"), ("140426", "140426"))
    with pytest.raises(ValueError):
        Identity.from_config({"ORG_CODE": "140400", "CHILD_ORGS": "1404=x"})
    events = Change("140428").batch("a", 4, [("x.a", {}), ("x.b", {})],
                                    [("x.linked", {}, "140400", "zhzx.up")])
    assert [e["seq"] for e in events] == [5, 6, 6]   # a linked copy adds no version
    only = Change("140428").batch("a", 4, [], [("x.linked", {}, "140400", "zhzx.up")])
    assert [e["seq"] for e in only] == [5]


def test_the_provinces_progress_on_a_proposal_the_city_forwarded_on_goes_down_to_the_county():
    city_copy = dict(under_review(), _id="140400-p7", state="forwarded",
                     source={"org": "140428", "proposal_id": "140428-p1"},
                     forwarded={"to": "140000"}, history=[{"on": "2026-11-20"}])
    body = {"state": "registered", "state_label": "省政协已立案", "text": "已立案",
            "on": "2026-11-25", "by": "province"}
    fields, events = domain.upstream_change(city_copy, body, 3)
    after = dict(city_copy, **fields)
    down = domain.feedback(city_copy, after, {})
    assert down["province"] == {"state": "registered", "state_label": "省政协已立案",
                                "text": "已立案", "on": "2026-11-25"}
    assert down["proposal_id"] == "140428-p1" and down["state"] == "forwarded"
    # the same progress again tells the county nothing new
    assert domain.feedback(after, after, {}) is None
    assert domain.linked(city_copy, after, parent_org=None) == [
        ("proposal.feedback", down, "140428")]


def test_forwarded_proposals_count_what_became_of_them_above_and_at_the_province():
    from services.proposals import statistics
    base = {"submitted_at": "2026-02-01", "year": 2026, "kind": "member", "state": "forwarded"}
    docs = [dict(base, _id="a", upstream={"state": "assigned"}),
            dict(base, _id="b", upstream={"state": "forwarded", "province": {
                "state": "registered", "state_label": "省政协已立案"}}),
            dict(base, _id="c", upstream={"state": "closed", "by": "province"}),
            dict(base, _id="d"),
            dict(base, _id="e", state="registered", registered_at="2026-02-03")]
    figures = statistics.compute(docs, 2026)
    assert figures["forwarded_upward"] == {
        "total": 4, "registered_above": 2, "answered_above": 1, "reached_province": 2,
        "registered_at_province": 2, "answered_at_province": 1}
    assert ["其中：转至省政协", 2, ""] in figures["table"]


def test_a_provincial_task_is_reported_through_the_adapter_and_passed_on_with_its_origin():
    body = {"task_id": "140000-PT0001", "kind": "research", "title": "调研", "content": "c",
            "due_on": "2026-12-31", "issuer": "省政协办公厅", "issued_on": "2026-11-20"}
    copy, events = tasks.received(body, origin="140000", org="140400", today=TODAY,
                                  via="province")
    assert copy["source"] == {"org": "140000", "task_id": "140000-PT0001", "via": "province",
                              "issuer": "省政协办公厅", "issued_on": "2026-11-20"}
    fields, events, linked = tasks.act(copy, "accept", {}, today=TODAY)
    assert linked == [] and events[0][0] == "task.accepted"
    assert events[0][1]["source_org"] == "140000"
    assert tasks.passed_on_from(None) and tasks.passed_on_from({"_id": "T"})
    assert tasks.passed_on_from(copy) == {}
    data = {"kind": "research", "title": "调研", "content": "c", "due_on": date(2026, 12, 20),
            "parent_task": copy["_id"]}
    task, _, linked = tasks.new_task(data, task_id="T2", org="140400",
                                     children={"140428": "长子县"}, today=TODAY)
    assert task["parent_task"] == "140000-PT0001"
    county, _ = tasks.received(linked[0][1], origin="140400", org="140428", today=TODAY)
    assert county["source"] == {"org": "140400", "task_id": "T2",
                                "parent_task": "140000-PT0001"}
