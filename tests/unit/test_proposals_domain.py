"""The proposal state machine, pure: properties over random action sequences."""
import copy
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from services.common.problems import Conflict, Forbidden, Invalid, Problem
from services.proposals import domain, statistics
from services.proposals.domain import Actor, Context, Rules

MEMBERS = {"m1": {"status": "active"}, "m2": {"status": "active"},
           "m3": {"status": "removed"}}
UNITS = {"u1": {"name": "县教育局"}, "u2": {"name": "县财政局"}}
GROUND = "内容空泛、无具体建议"
RULES = Rules(grounds=(GROUND,), windows=({"session": "一次会议", "opens": "2026-01-05",
                                          "closes": "2026-01-09"},))
TARGET = {"_id": "t1", "state": "registered"}
ACTORS = [Actor.of("office", ["admin"]), Actor.of("rev", ["reviewer"]),
          Actor.of("lead", ["member:m1"]), Actor.of("co", ["member:m2"]),
          Actor.of("edu", ["unit:u1"]), Actor.of("fin", ["unit:u2"]),
          Actor.of("stranger", ["member:m9", "unit:u9"]), Actor.scanner()]

DATA = {
    "update_draft": [{"title": "关于改善农村饮水的建议"}, {}],
    "propose": [{"decision": "register"}, {"decision": "register", "disputed": True},
                {"decision": "merge", "merged_into": "t1"}, {"decision": "reject", "ground": GROUND},
                {"decision": "reject", "ground": "随便"}, {"decision": "return", "reason": "补充"},
                {"decision": "convert_to_opinion"}, {"decision": "convert_to_suggestion"}],
    "decide": [{}, {"decision": "register"}, {"decision": "return", "reason": "补充"}],
    "assign": [{"lead_unit": "u1", "co_units": ["u2"]}, {"lead_unit": "u1"},
               {"lead_unit": "nope"}],
    "reassign": [{"lead_unit": "u2"}, {"lead_unit": "u1", "co_units": ["u2"]}],
    "object": [{"reason": "非本单位职责"}, {}],
    "contact": [{"method": "visit"}],
    "co_opinion": [{"text": "同意"}],
    "request_extension": [{"reason": "协调中", "working_days": 20}, {"reason": "x"}],
    "approve_extension": [{}, {"approve": False}],
    "answer": [{"category": "A", "text": "已解决"}, {"category": "C", "text": "留作参考"},
               {"text": "没有类别"}],
    "send_back": [{"reason": "答复不具体"}],
    "evaluate": [{"rating": "satisfied"}, {"rating": "dissatisfied"},
                 {"rating": "basically_satisfied"}, {"rating": "great"}],
    "mark_key": [{"supervisors": ["县长"]}, {"supervisors": []}],
    "supervise": [{"leader": "县长"}, {"leader": "别人"}],
}


def draft(cosigners=("m2",), kind="member", today=date(2026, 3, 2)):
    data = {"kind": kind, "type": "interim", "title": "关于加强乡村教师队伍建设的建议",
            "situation": "现状", "analysis": "分析", "suggestions": "建议",
            "category": "livelihood", "cosigners": list(cosigners),
            "lead_member": "m1" if kind == "member" else None,
            "collective": {"kind": "party", "name": "民盟"} if kind == "collective" else None}
    doc, events = domain.new_proposal(data, Actor.of("office", ["admin"]), proposal_id="p1",
                                      org="140428", today=today, members=MEMBERS)
    return doc


def context():
    counter = iter(range(1, 1000))
    return Context(members=MEMBERS, units=UNITS, merge_target=TARGET,
                   next_number=lambda: next(counter))


def attempt(p, action, data, actor, today, ctx):
    """``act`` checked: a refusal is a 4xx that changes nothing (returns None);
    success leaves the input alone and emits at least one event."""
    before = copy.deepcopy(p)
    try:
        fields, events = domain.act(p, action, data, actor, RULES, today, ctx)
    except Problem as exc:
        assert p == before, "a refused action changed the proposal"
        assert exc.status in (403, 409, 422), exc
        if exc.status == 409 and "current_state" in exc.extra:
            assert exc.extra["current_state"] == p["state"]
        return None
    assert p == before, "act must not mutate its input"
    assert events, f"{action} emitted no event"
    return dict(p, **fields), events


def run(p, steps):
    """Apply ``(action, actor, data)`` steps, yielding the accepted ones."""
    today = date(2026, 3, 2)
    ctx = context()
    for action, actor, data in steps:
        done = attempt(p, action, data, actor, today, ctx)
        if done is None:
            continue
        p, events = done
        yield action, p, events
        today += timedelta(days=1)


def closing_path(history):
    """The actions on the way to ``closed``, in order."""
    return [h["action"] for h in history if h["from"] != h["to"]]


def check_invariants(prev_state, action, p, events):
    assert p["state"] in domain.STATES
    if prev_state in domain.TERMINAL:
        assert p["state"] == prev_state, f"{action} left terminal state {prev_state}"
    for _, payload in events:
        assert "phone" not in payload and "id_number" not in payload
    if p["state"] == "closed":
        path = closing_path(p["history"])
        expected = ["submit", "classify", "decide", "assign", "answer", "release", "evaluate"]
        it = iter(path)
        assert all(step in it for step in expected), path
        assert p["registered_at"] and p["released_at"] and p.get("evaluation")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_sequence_reaches_an_undefined_state(data):
    p = draft(cosigners=data.draw(st.sampled_from([(), ("m2",)])))
    ctx = context()
    today = date(2026, 3, 2)
    for _ in range(data.draw(st.integers(1, 80))):
        allowed = domain.FLOW.allowed(p["state"])
        action = data.draw(st.sampled_from(allowed)) if allowed and data.draw(
            st.integers(0, 9)) else data.draw(st.sampled_from(sorted(domain.ACTIONS)))
        able = [a for a in ACTORS if domain.ACTIONS[action].may(a, p)]
        actor = data.draw(st.sampled_from(able)) if able and data.draw(
            st.integers(0, 5)) else data.draw(st.sampled_from(ACTORS))
        payload = data.draw(st.sampled_from(DATA.get(action, [{}])))
        done = attempt(p, action, payload, actor, today, ctx)
        if done is None:
            continue
        check_invariants(p["state"], action, *done)
        p = done[0]
        event(f"reached {p['state']}")
        today += timedelta(days=data.draw(st.integers(0, 40)))


def test_the_ordinary_path_to_closed():
    p = draft()
    cast = {a.sub: a for a in ACTORS}
    plan = [("submit", "lead", {}), ("confirm_cosign", "co", {}), ("classify", "rev", {}),
            ("propose", "rev", {"decision": "register"}), ("decide", "rev", {}),
            ("assign", "office", {"lead_unit": "u1", "co_units": ["u2"]}),
            ("start", "edu", {}), ("co_opinion", "fin", {"text": "同意"}),
            ("answer", "edu", {"category": "A", "text": "已解决"}), ("release", "rev", {}),
            ("evaluate", "lead", {"rating": "satisfied"}),
            ("evaluate", "co", {"rating": "basically_satisfied"}), ("close", "office", {})]
    seen = [(a, q["state"]) for a, q, _ in run(p, [(a, cast[w], d) for a, w, d in plan])]
    assert seen == [("submit", "cosigning"), ("confirm_cosign", "submitted"),
                    ("classify", "under_review"), ("propose", "under_review"),
                    ("decide", "registered"), ("assign", "assigned"),
                    ("start", "in_handling"), ("co_opinion", "in_handling"),
                    ("answer", "answered"), ("release", "awaiting_evaluation"),
                    ("evaluate", "awaiting_evaluation"), ("evaluate", "basically_satisfied"),
                    ("close", "closed")]


def test_refusals_name_state_and_allowed_actions():
    p = draft()
    with pytest.raises(Conflict) as exc:
        domain.act(p, "classify", {}, ACTORS[1], RULES, date(2026, 3, 2), context())
    assert exc.value.extra["current_state"] == "draft"
    assert exc.value.extra["allowed_actions"] == []   # the caller's, not the state's
    with pytest.raises(Conflict) as exc:
        domain.act(p, "assign", {}, ACTORS[0], RULES, date(2026, 3, 2), context())
    assert exc.value.extra["allowed_actions"] == ["submit", "update_draft", "withdraw"]
    with pytest.raises(Forbidden):
        domain.act(p, "submit", {}, ACTORS[3], RULES, date(2026, 3, 2), context())


def test_session_window_and_member_checks():
    p = dict(draft(cosigners=()), type="session")
    lead = ACTORS[2]
    with pytest.raises(Invalid) as exc:
        domain.act(p, "submit", {}, lead, RULES, date(2026, 3, 2), context())
    assert "type" in exc.value.errors
    fields, _ = domain.act(p, "submit", {}, lead, RULES, date(2026, 1, 6), context())
    assert fields["session"] == "一次会议" and fields["state"] == "submitted"
    with pytest.raises(Invalid) as exc:
        domain.new_proposal({"kind": "member", "type": "interim", "lead_member": "m1",
                             "cosigners": ["m3", "m7"], "title": "x"},
                            ACTORS[0], proposal_id="p2", org="140428",
                            today=date(2026, 3, 2), members=MEMBERS)
    assert exc.value.errors["cosigners"] == ["委员 m3 不是在任委员", "委员 m7 不存在"]
    with pytest.raises(Forbidden):
        domain.new_proposal({"kind": "collective", "type": "interim", "title": "x",
                             "collective": {"kind": "party", "name": "民盟"}},
                            ACTORS[2], proposal_id="p3", org="140428",
                            today=date(2026, 3, 2), members=MEMBERS)


def test_objection_only_inside_the_window():
    cast = {a.sub: a for a in ACTORS}
    p = draft(cosigners=())
    plan = [("submit", "lead", {}), ("classify", "rev", {}),
            ("propose", "rev", {"decision": "register"}), ("decide", "rev", {}),
            ("assign", "office", {"lead_unit": "u1"})]
    for _, p, _ in run(p, [(a, cast[w], d) for a, w, d in plan]):
        pass
    due = date.fromisoformat(p["deadlines"]["objection"])
    fields, _ = domain.act(p, "object", {"reason": "非本单位职责"}, cast["edu"], RULES, due,
                           context())
    assert fields["state"] == "unit_returned"
    with pytest.raises(Conflict) as exc:
        domain.act(p, "object", {"reason": "非本单位职责"}, cast["edu"], RULES,
                   due + timedelta(days=1), context())
    assert exc.value.extra["objection_due"] == due.isoformat()


def test_reminders_are_sent_once_and_only_the_latest_after_a_gap():
    p = draft(cosigners=())
    p.update(state="in_handling", lead_unit="u1", handlers=["u1"], first_contact_at="x",
             deadlines={"answer": "2026-06-30"}, seq=9)
    cal = RULES.calendar
    due = date(2026, 6, 30)
    fields, events = domain.scan(p, RULES, cal.add(due, -10))
    assert [e[1]["working_days_left"] for e in events] == [10]
    p.update(fields)
    assert domain.scan(p, RULES, cal.add(due, -9)) == ({}, [])
    # down for a while: only the newest reminder is sent, the skipped ones marked
    fields, events = domain.scan(p, RULES, cal.add(due, 6))
    types = [t for t, _ in events]
    assert types == ["proposal.reminder_due", "proposal.overdue"]
    assert events[0][1]["working_days_left"] == -6 and fields["overdue"] == 1
    p.update(fields)
    assert domain.scan(p, RULES, cal.add(due, 7)) == ({}, [])
    fields, events = domain.scan(p, RULES, cal.add(due, 10))
    assert [e[1]["working_days_left"] for e in events] == [-10]


def test_statistics_of_a_small_hand_made_set():
    def doc(**kw):
        base = {"kind": "member", "state": "closed", "year": 2026, "submitted_at": "2026-01-06",
                "category": "livelihood"}
        base.update(kw)
        return base
    docs = [doc(registered_at="d", handlers=["u1", "u2"], released_at="d", on_time=1,
                evaluation="satisfied", answer_category="A", key=1),
            doc(registered_at="d", handlers=["u1"], released_at="d", on_time=0,
                evaluation="basically_satisfied", answer_category="B", kind="collective",
                category="economy"),
            doc(registered_at="d", handlers=["u3"], state="in_handling"),
            doc(state="rejected"), doc(state="merged"), doc(state="draft", submitted_at=None),
            doc(year=2025, registered_at="d")]
    f = statistics.compute(docs, year=2026)
    assert (f["submitted"], f["registered"], f["registration_rate"]) == (5, 3, 0.6)
    assert f["by_kind"]["collective"] == {"count": 1, "share": 0.3333}
    assert f["livelihood_share"] == 0.6667 and f["units_involved"] == 3
    assert (f["replied"], f["reply_rate"], f["on_time_rate"]) == (2, 0.6667, 0.5)
    assert f["satisfaction_rate"] == 0.5 and f["satisfied_or_basic_rate"] == 1.0
    assert f["answer_categories"]["A"]["share"] == 0.5
    assert (f["key"], f["rejected"], f["merged"]) == (1, 1, 1)
    assert f["table"][1] == ["立案", 3, "60.0%"]


def test_scan_closes_cosigning_after_its_deadline():
    p = draft(cosigners=("m2",))
    p, _ = attempt(p, "submit", {}, ACTORS[2], date(2026, 3, 2), context())
    due = date.fromisoformat(p["deadlines"]["cosign"])
    assert domain.scan(p, RULES, due) == ({}, [])
    fields, events = domain.scan(p, RULES, due + timedelta(days=1))
    assert fields["state"] == "submitted" and fields["cosigners"] == {"m2": "dropped"}
    assert [t for t, _ in events] == ["proposal.cosign_closed", "proposal.submitted"]
    assert events[0][1]["dropped"] == ["m2"] and events[1][1]["proposers"] == ["m1"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_offered_actions_are_exactly_those_that_succeed(data):
    """At random points of random walks, for every role: each action offered
    (``actions_for``) succeeds with some of its documented data, and each
    action not offered is refused whatever the data."""
    p = draft(cosigners=data.draw(st.sampled_from([(), ("m2",)])))
    ctx = context()
    today = date(2026, 3, 2)
    for _ in range(data.draw(st.integers(1, 30))):
        for actor in ACTORS:
            offered = set(domain.actions_for(p, actor, today))
            for action in domain.ACTIONS:
                outcomes = [attempt(p, action, payload, actor, today, context())
                            for payload in DATA.get(action, [{}])]
                if action in offered:
                    assert any(o is not None for o in outcomes), (action, actor.sub, p["state"])
                else:
                    assert all(o is None for o in outcomes), (action, actor.sub, p["state"])
        allowed = domain.FLOW.allowed(p["state"])
        if not allowed:
            break
        action = data.draw(st.sampled_from(allowed))
        actor = data.draw(st.sampled_from(ACTORS))
        done = attempt(p, action, data.draw(st.sampled_from(DATA.get(action, [{}]))), actor,
                       today, ctx)
        if done is not None:
            p = done[0]
        today += timedelta(days=data.draw(st.integers(0, 40)))


def test_the_lead_unit_is_offered_the_answer_only_once_every_co_unit_has_given_its_opinion():
    cast = {a.sub: a for a in ACTORS}
    start = [("submit", cast["lead"], {}), ("confirm_cosign", cast["co"], {}),
             ("classify", cast["rev"], {}), ("propose", cast["rev"], {"decision": "register"}),
             ("decide", cast["rev"], {}),
             ("assign", cast["office"], {"lead_unit": "u1", "co_units": ["u2"]}),
             ("start", cast["edu"], {})]
    *_, (_, p, _) = run(draft(), start)
    today = date(2026, 4, 1)
    assert p["state"] == "in_handling"
    assert "answer" not in domain.actions_for(p, cast["edu"], today)
    with pytest.raises(Conflict) as refused:
        domain.act(p, "answer", {"category": "A", "text": "已解决"}, cast["edu"], RULES, today,
                   context())
    assert refused.value.extra["waiting_co_units"] == ["u2"]
    assert refused.value.detail == "协办单位县财政局尚未提交协办意见，收齐后才能答复"
    assert "answer" not in refused.value.extra["allowed_actions"]
    p, _ = attempt(p, "co_opinion", {"text": "同意"}, cast["fin"], today, context())
    assert "answer" in domain.actions_for(p, cast["edu"], today)
    p, _ = attempt(p, "answer", {"category": "A", "text": "已解决"}, cast["edu"], today, context())
    assert p["state"] == "answered"


def test_a_reviewer_cannot_change_the_proposed_target_ground_or_reason_at_decision():
    cast = {a.sub: a for a in ACTORS}
    start = [("submit", cast["lead"], {}), ("confirm_cosign", cast["co"], {}),
             ("classify", cast["rev"], {})]
    ctx = context()
    other = {"_id": "t2", "state": "registered"}
    for proposed, changed in (
            ({"decision": "merge", "merged_into": "t1"}, {"merged_into": "t2"}),
            ({"decision": "reject", "ground": GROUND}, {"ground": "另一理由"}),
            ({"decision": "return", "reason": "补充数据"}, {"reason": "别的理由"})):
        *_, (_, p, _) = run(draft(), start + [("propose", cast["rev"], proposed)])
        ctx.merge_target = other if changed.get("merged_into") else TARGET
        with pytest.raises(Forbidden, match="终审"):
            domain.act(copy.deepcopy(p), "decide", dict(changed), cast["rev"], RULES,
                       date(2026, 3, 9), ctx)
        assert p["review"]["stage"] == "proposed"          # nothing changed
        domain.act(copy.deepcopy(p), "decide", {}, cast["rev"], RULES, date(2026, 3, 9),
                   Context(members=MEMBERS, units=UNITS, merge_target=TARGET,
                           next_number=lambda: 1))          # as proposed: the reviewer may
