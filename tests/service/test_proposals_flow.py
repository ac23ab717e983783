"""The proposal lifecycle through HTTP, with the members service answering
RPC, on a real broker and Mongo wire server."""
import concurrent.futures
from datetime import date

import pymongo
import pytest

from services.common.workdays import WorkCalendar
from services.members.service import MembersService
from services.proposals.service import ProposalsService
from tests.support import Client, wait_until, with_port
from tests.service.test_members_api import valid_member

pytestmark = pytest.mark.service

PHONE = "13912345678"


def proposals_db(config):
    return pymongo.MongoClient(config["MONGO_URI"])[config["MONGO_DB_PREFIX"] + "proposals"]


class Platform:
    """Members and proposals services of one county, with clients per role."""

    def __init__(self, run_service, config, probe):
        self.config = config
        self.events = probe("proposals.events")
        members_conf = with_port(config)
        run_service(MembersService, members_conf)
        run_service(ProposalsService, config)
        self.members_admin = Client(members_conf, "admin")
        self.admin = Client(config, "admin")
        self.reviewer = Client(config, "reviewer")
        self.db = proposals_db(config)

    def member(self, name, id_number):
        resp = self.members_admin.post("/api/v1/members", json=valid_member(
            name=name, id_number=id_number, phone=PHONE))
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def unit(self, uid, name, topics=()):
        resp = self.admin.post("/api/v1/units", json={
            "id": uid, "name": name, "kind": "government", "topics": list(topics),
            "contacts": [{"name": "办公室", "phone": PHONE}]})
        assert resp.status_code == 201, resp.text
        return uid

    def as_member(self, member_id):
        return Client(self.config, f"member:{member_id}")

    def as_unit(self, unit_id):
        return Client(self.config, f"unit:{unit_id}")

    def act(self, client, pid, action, expect=200, **data):
        resp = client.post(f"/api/v1/proposals/{pid}/actions/{action}", json=data)
        assert resp.status_code == expect, (action, resp.status_code, resp.text)
        return resp.json()

    def settled(self, pid):
        doc = self.db["proposals"].find_one({"_id": pid}, {"_pending": 1})
        return doc is not None and doc.get("_pending") == 0


# valid check digits, distinct people
IDS = ["140428199003071235", "140428198501010019", "140428198001010012",
       "140428197505050013"]


@pytest.fixture
def county(run_service, config, probe):
    return Platform(run_service, config, probe)


def content(**over):
    data = {"kind": "member", "type": "interim", "title": "关于加强农村学校教师队伍建设的建议",
            "situation": "我县农村学校教师流失严重。", "analysis": "待遇偏低，发展空间有限。",
            "suggestions": "一是提高乡村教师补贴；二是完善职称评聘。", "category": "livelihood"}
    data.update(over)
    return data


def registered(county, lead, cosigners=()):
    resp = county.as_member(lead).post("/api/v1/proposals",
                                       json=content(cosigners=list(cosigners)))
    assert resp.status_code == 201, resp.text
    pid = resp.json()["id"]
    county.act(county.as_member(lead), pid, "submit")
    for m in cosigners:
        county.act(county.as_member(m), pid, "confirm_cosign")
    county.act(county.reviewer, pid, "classify")
    county.act(county.reviewer, pid, "propose", decision="register")
    county.act(county.reviewer, pid, "decide")
    return pid


def test_whole_lifecycle_with_rehandling_emits_every_transition(county):
    lead, co_signer = county.member("王建国", IDS[0]), county.member("李红", IDS[1])
    edu, fin = county.unit("jyj", "县教育局", ["教育", "教师"]), county.unit("czj", "县财政局")
    resp = county.as_member(lead).post("/api/v1/proposals",
                                       json=content(cosigners=[co_signer]))
    assert resp.status_code == 201, resp.text
    pid = resp.json()["id"]
    assert resp.json()["state"] == "draft"
    assert county.act(county.as_member(lead), pid, "submit")["state"] == "cosigning"
    body = county.act(county.as_member(co_signer), pid, "confirm_cosign")
    assert body["state"] == "submitted"
    county.act(county.reviewer, pid, "classify", note="教育类")
    county.act(county.reviewer, pid, "propose", decision="register")
    body = county.act(county.reviewer, pid, "decide")
    assert body["state"] == "registered" and body["number"] == 1
    body = county.act(county.admin, pid, "assign", lead_unit=edu, co_units=[fin])
    assert body["deadlines"]["answer"] > body["deadlines"]["objection"]
    county.act(county.as_unit(edu), pid, "start")
    county.act(county.as_unit(edu), pid, "contact", method="visit")
    # the lead answers only once every co-handler has given its opinion
    resp = county.as_unit(edu).post(f"/api/v1/proposals/{pid}/actions/answer",
                                    json={"category": "B", "text": "正在落实"})
    assert resp.status_code == 409 and resp.json()["waiting_co_units"] == [fin]
    assert "县财政局" in resp.json()["detail"]
    assert "answer" not in resp.json()["allowed_actions"]
    county.act(county.as_unit(fin), pid, "co_opinion", text="同意，配合落实补贴资金")
    assert "answer" in county.as_unit(edu).get(f"/api/v1/proposals/{pid}").json()[
        "allowed_actions"]
    county.act(county.as_unit(edu), pid, "answer", category="B", text="正在落实")
    county.act(county.reviewer, pid, "release")
    county.act(county.as_member(lead), pid, "evaluate", rating="dissatisfied")
    body = county.act(county.as_member(co_signer), pid, "evaluate", rating="satisfied")
    assert body["state"] == "dissatisfied"
    county.act(county.admin, pid, "rehandle")
    county.act(county.as_unit(edu), pid, "answer", category="A", text="已全部解决")
    county.act(county.reviewer, pid, "release")
    county.act(county.as_member(lead), pid, "evaluate", rating="satisfied")
    county.act(county.as_member(co_signer), pid, "evaluate", rating="basically_satisfied")
    body = county.act(county.admin, pid, "close")
    assert body["state"] == "closed" and body["evaluation"] == "basically_satisfied"
    assert body["answer_category"] == "A" and body["round"] == 2

    expected = ["proposal.drafted", "proposal.cosign_requested", "proposal.cosign_confirmed",
                "proposal.submitted", "proposal.review_started",
                "proposal.registration_proposed", "proposal.registered", "proposal.assigned",
                "proposal.handling_started", "proposal.proposer_contacted",
                "proposal.co_opinion_given", "proposal.answered", "proposal.answer_released",
                "proposal.evaluated", "proposal.evaluated", "proposal.rehandling",
                "proposal.answered", "proposal.answer_released", "proposal.evaluated",
                "proposal.evaluated", "proposal.closed"]
    mine = county.events.wait_for(len(expected), where=lambda e: e["aggregate_id"] == pid)
    received = county.events.received
    assert [e["type"] for e in mine] == expected
    assert [e["seq"] for e in mine] == list(range(1, len(expected) + 1))
    assert all(e["origin"] == "140428" for e in mine)
    assert PHONE not in str(received) and IDS[0] not in str(received)
    assigned = next(e for e in mine if e["type"] == "proposal.assigned")["payload"]
    assert assigned["lead_unit"] == edu and assigned["co_units"] == [fin]
    assert assigned["proposers"] == [lead, co_signer]


def test_illegal_transition_is_409_naming_state_and_allowed_actions(county):
    lead = county.member("王建国", IDS[0])
    unit = county.unit("jyj", "县教育局")
    pid = registered(county, lead)
    resp = county.as_unit(unit).post(f"/api/v1/proposals/{pid}/actions/answer",
                                     json={"category": "A", "text": "答复"})
    # the unit is not assigned yet: for it the proposal does not exist
    assert resp.status_code == 404
    resp = county.admin.post(f"/api/v1/proposals/{pid}/actions/release", json={})
    assert resp.status_code == 409
    problem = resp.json()
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert problem["current_state"] == "registered"
    assert "assign" in problem["allowed_actions"] and "release" not in problem["allowed_actions"]
    resp = county.admin.post(f"/api/v1/proposals/{pid}/actions/fly", json={})
    assert resp.status_code == 404


def test_each_role_only_its_own_actions(county, config):
    lead, other = county.member("王建国", IDS[0]), county.member("李红", IDS[1])
    a, b = county.unit("jyj", "县教育局"), county.unit("wjj", "县卫生健康局")
    pid = registered(county, lead)
    # a member cannot register (review) or assign
    resp = county.as_member(lead).post(f"/api/v1/proposals/{pid}/actions/assign",
                                       json={"lead_unit": a})
    assert resp.status_code == 403
    county.act(county.admin, pid, "assign", lead_unit=a)
    # another unit neither sees nor answers the proposal
    assert county.as_unit(b).get(f"/api/v1/proposals/{pid}").status_code == 404
    assert county.as_unit(b).get("/api/v1/proposals").json()["items"] == []
    resp = county.as_unit(b).post(f"/api/v1/proposals/{pid}/actions/start", json={})
    assert resp.status_code == 404
    assert [p["id"] for p in county.as_unit(a).get("/api/v1/proposals").json()["items"]] == [pid]
    county.act(county.as_unit(a), pid, "start")
    # a member who is not a proposer sees nothing; the proposer cannot answer
    assert county.as_member(other).get(f"/api/v1/proposals/{pid}").status_code == 404
    resp = county.as_member(lead).post(f"/api/v1/proposals/{pid}/actions/answer",
                                       json={"category": "A", "text": "x"})
    assert resp.status_code == 403
    # the reviewer cannot assign; the lead unit cannot release its own answer
    county.act(county.as_unit(a), pid, "answer", category="A", text="已解决")
    assert county.reviewer.post(f"/api/v1/proposals/{pid}/actions/rehandle",
                                json={}).status_code == 403
    assert county.as_unit(a).post(f"/api/v1/proposals/{pid}/actions/release",
                                  json={}).status_code == 403
    # another platform's token is refused outright
    foreign = Client(config, "admin", org="140400")
    assert foreign.get(f"/api/v1/proposals/{pid}").status_code == 403
    assert foreign.post(f"/api/v1/proposals/{pid}/actions/release", json={}).status_code == 403
    assert county.db["proposals"].find_one({"_id": pid})["state"] == "answered"


def test_two_staff_at_once_cannot_both_win(county):
    lead = county.member("王建国", IDS[0])
    resp = county.as_member(lead).post("/api/v1/proposals", json=content())
    pid = resp.json()["id"]
    county.act(county.as_member(lead), pid, "submit")
    county.act(county.reviewer, pid, "classify")
    seq = county.act(county.reviewer, pid, "propose", decision="register")["seq"]
    bodies = [{"seq": seq, "decision": "register"},
              {"seq": seq, "decision": "return", "reason": "请补充"}]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda b: county.admin.post(
            f"/api/v1/proposals/{pid}/actions/decide", json=b), bodies))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 409], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()
    doc = county.db["proposals"].find_one({"_id": pid})
    assert doc["state"] == winner["state"] and doc["seq"] == seq + 1
    # a stale seq is refused too
    resp = county.admin.post(f"/api/v1/proposals/{pid}/actions/supervise",
                             json={"seq": seq, "leader": "县长"})
    assert resp.status_code == 409


def test_bad_input_is_4xx_with_fields_and_changes_nothing(county):
    lead, removed = county.member("王建国", IDS[0]), county.member("李红", IDS[1])
    unit = county.unit("jyj", "县教育局")
    member = county.as_member(lead)
    resp = member.post("/api/v1/proposals", json=content(title="关于" + "很长" * 30 + "的建议"))
    assert resp.status_code == 422 and "title" in resp.json()["errors"]
    resp = member.post("/api/v1/proposals", json=content(cosigners=["m-nobody"]))
    assert resp.status_code == 422 and "cosigners" in resp.json()["errors"]
    assert "m-nobody" in resp.json()["errors"]["cosigners"][0]
    resp = county.members_admin.post(f"/api/v1/members/{removed}/end", json={
        "status": "removed", "reason": "撤销委员资格", "ended_on": date.today().isoformat()})
    assert resp.status_code == 200, resp.text
    resp = member.post("/api/v1/proposals", json=content(cosigners=[removed]))
    assert resp.status_code == 422 and "不是在任委员" in resp.json()["errors"]["cosigners"][0]
    assert county.db["proposals"].count_documents({}) == 0

    pid = registered(county, lead)
    wait_until(lambda: county.settled(pid), what="outbox flushed")
    before = county.db["proposals"].find_one({"_id": pid})
    resp = county.admin.post(f"/api/v1/proposals/{pid}/actions/assign",
                             json={"lead_unit": "no-such-unit", "co_units": ["x1"]})
    assert resp.status_code == 422
    assert set(resp.json()["errors"]) == {"lead_unit", "co_units"}
    resp = county.admin.post(f"/api/v1/proposals/{pid}/actions/assign",
                             json={"lead_unit": unit, "surprise": 1})
    assert resp.status_code == 422 and "surprise" in resp.json()["errors"]
    county.act(county.admin, pid, "assign", lead_unit=unit)
    county.act(county.as_unit(unit), pid, "start")
    resp = county.as_unit(unit).post(f"/api/v1/proposals/{pid}/actions/answer",
                                     json={"text": "已办理"})
    assert resp.status_code == 422 and "category" in resp.json()["errors"]
    resp = county.as_unit(unit).post(f"/api/v1/proposals/{pid}/actions/answer",
                                     data="{oops", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    after = county.db["proposals"].find_one({"_id": pid})
    assert after["state"] == "in_handling" and after["seq"] == before["seq"] + 2
    # nothing was emitted by the refused requests: the events after "registered"
    # are exactly the two accepted actions
    events = county.events.wait_for(1)
    wait_until(lambda: county.settled(pid), what="outbox flushed")
    events = [e for e in county.events.wait_for(len(events)) if e["aggregate_id"] == pid]
    assert [e["type"] for e in events][-3:] == ["proposal.registered", "proposal.assigned",
                                                 "proposal.handling_started"]


def test_session_proposals_only_inside_the_window(county, config):
    lead = county.member("王建国", IDS[0])
    member = county.as_member(lead)
    pid = member.post("/api/v1/proposals", json=content(type="session")).json()["id"]
    body = county.act(member, pid, "submit")
    assert body["state"] == "submitted" and body["session"] == "测试会议"


def test_merge_links_both_ways_and_return_then_resubmit(county):
    lead, other = county.member("王建国", IDS[0]), county.member("李红", IDS[1])
    target = registered(county, other)
    member = county.as_member(lead)
    created = member.post("/api/v1/proposals", json=content(title="关于提高乡村教师待遇的建议"))
    pid = created.json()["id"]
    body = county.act(member, pid, "submit")
    # similar proposals are the office's merge candidates: a member is not shown
    # another member's proposal (its title and state) through them
    assert "similar" not in created.json() and "similar" not in body
    body = county.act(county.reviewer, pid, "classify")
    assert target in [s["proposal_id"] for s in body["similar"]]
    county.act(county.reviewer, pid, "propose", decision="return", reason="请补充数据")
    assert county.act(county.reviewer, pid, "decide")["state"] == "returned"
    county.act(member, pid, "update_draft", analysis="补充：近三年流失 120 人。")
    county.act(member, pid, "resubmit")
    county.act(county.reviewer, pid, "classify")
    county.act(county.reviewer, pid, "propose", decision="merge", merged_into=target)
    assert county.act(county.reviewer, pid, "decide")["state"] == "merged"
    assert county.admin.get(f"/api/v1/proposals/{target}").json()["merged_from"] == [pid]
    # a disputed proposal needs the final review of the office
    other = member.post("/api/v1/proposals", json=content(title="关于建设县城公园的建议")).json()
    county.act(member, other["id"], "submit")
    county.act(county.reviewer, other["id"], "classify")
    county.act(county.reviewer, other["id"], "propose", decision="reject",
               ground="内容空泛、无具体建议", disputed=True)
    county.act(county.reviewer, other["id"], "decide", expect=403)
    assert county.act(county.admin, other["id"], "decide",
                      decision="register")["state"] == "registered"


def test_scan_reminds_once_and_marks_overdue(county):
    lead = county.member("王建国", IDS[0])
    unit = county.unit("jyj", "县教育局")
    pid = registered(county, lead)
    county.act(county.admin, pid, "assign", lead_unit=unit)
    county.act(county.admin, pid, "mark_key", supervisors=["县长"])
    county.act(county.as_unit(unit), pid, "start")
    county.act(county.as_unit(unit), pid, "contact", method="phone")
    doc = county.db["proposals"].find_one({"_id": pid})
    due = date.fromisoformat(doc["deadlines"]["answer"])
    cal = WorkCalendar.from_config(county.config["PROPOSALS"]["calendar"])

    def scan(day):
        resp = county.admin.post(f"/api/v1/proposals/scan?today={day.isoformat()}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    assert scan(cal.add(due, -3))["reminders"] == 1
    assert scan(cal.add(due, -3))["reminders"] == 0          # idempotent
    assert scan(cal.add(due, -2))["reminders"] == 0
    late = scan(cal.add(due, 2))
    assert late["reminders"] == 1 and late["overdue"] == 1
    assert scan(cal.add(due, 2))["reminders"] == 0
    doc = county.db["proposals"].find_one({"_id": pid})
    assert doc["overdue"] == 1
    wait_until(lambda: county.settled(pid), what="outbox flushed")
    events = [e for e in county.events.wait_for(1) if e["aggregate_id"] == pid]
    reminders = [e["payload"] for e in events if e["type"] == "proposal.reminder_due"]
    assert [(r["deadline"], r["working_days_left"]) for r in reminders] == [
        ("answer", 3), ("answer", -2)]
    assert reminders[0]["supervisors"] == ["县长"] and reminders[0]["key"] is True
    assert "proposal.overdue" in [e["type"] for e in events]
    # an approved extension moves the due date and clears the overdue flag
    county.act(county.as_unit(unit), pid, "request_extension", reason="涉及跨部门协调",
               working_days=30)
    body = county.act(county.admin, pid, "approve_extension")
    assert body["deadlines"]["answer"] == cal.add(due, 30).isoformat()


def test_members_service_down_gives_503_and_stores_nothing(run_service, config):
    run_service(ProposalsService, dict(config, RPC_TIMEOUT_SECONDS=1))
    member = Client(config, "member:m-1")
    resp = member.post("/api/v1/proposals", json=content())
    assert resp.status_code == 503, resp.text
    assert resp.json()["unavailable"] == ["委员服务"]
    assert proposals_db(config)["proposals"].count_documents({}) == 0


def test_offers_what_the_caller_can_do_and_the_office_acts_on_drafts_and_cosigning(county):
    """`allowed_actions` is the caller's, through HTTP; the office ends
    co-signing early; a proposer withdraws a draft; a bare POST works."""
    lead, co_signer = county.member("王建国", IDS[0]), county.member("李红", IDS[1])
    me = county.as_member(lead)
    pid = me.post("/api/v1/proposals", json=content(cosigners=[co_signer])).json()["id"]
    assert me.get(f"/api/v1/proposals/{pid}").json()["allowed_actions"] == [
        "submit", "update_draft", "withdraw"]
    # an action without fields needs no body at all
    bare = me.request("POST", f"/api/v1/proposals/{pid}/actions/submit")
    assert bare.status_code == 200 and bare.json()["state"] == "cosigning", bare.text
    assert "close_cosigning" in county.admin.get(f"/api/v1/proposals/{pid}").json()[
        "allowed_actions"]
    closed = county.act(county.admin, pid, "close_cosigning")
    assert closed["state"] == "submitted" and closed["cosigners"][co_signer] == "dropped"
    refused = county.admin.post(f"/api/v1/proposals/{pid}/actions/close_cosigning", json={})
    assert refused.status_code == 409
    assert refused.json()["allowed_actions"] == county.admin.get(
        f"/api/v1/proposals/{pid}").json()["allowed_actions"]

    other = me.post("/api/v1/proposals", json=content(title="关于县城停车的建议")).json()["id"]
    gone = county.act(me, other, "withdraw", reason="与他人提案重复")
    assert gone["state"] == "withdrawn" and gone["allowed_actions"] == []
    assert county.act(me, other, "submit", expect=409)["allowed_actions"] == []


def test_a_drill_scan_of_another_day_changes_nothing(run_service, config, probe):
    """Without the test configuration, `?today=` in the future is a dry run:
    it reports what would be sent and records no reminder, emits nothing."""
    settings = dict(config["PROPOSALS"], scan_drills_apply=False)
    county = Platform(run_service, dict(config, PROPOSALS=settings), probe)
    lead = county.member("王建国", IDS[0])
    unit = county.unit("jyj", "县教育局")
    pid = registered(county, lead)
    county.act(county.admin, pid, "assign", lead_unit=unit)
    wait_until(lambda: county.settled(pid), what="outbox flushed")
    before = county.db["proposals"].find_one({"_id": pid})
    due = date.fromisoformat(before["deadlines"]["answer"])
    drill = county.admin.post(f"/api/v1/proposals/scan?today={due.isoformat()}")
    assert drill.status_code == 200, drill.text
    body = drill.json()
    assert body["dry_run"] is True and body["reminders"] >= 1
    assert {w["proposal_id"] for w in body["would_send"]} == {pid}
    after = county.db["proposals"].find_one({"_id": pid})
    assert after["seq"] == before["seq"] and after.get("reminders") == before.get("reminders")
    assert after["_pending"] == 0   # nothing queued to be sent
    real = county.admin.post("/api/v1/proposals/scan").json()
    assert real["dry_run"] is False and "would_send" not in real


def test_an_answer_reaches_proposers_only_once_released(county):
    lead, co_signer = county.member("王建国", IDS[0]), county.member("李红", IDS[1])
    edu, fin = county.unit("jyj", "县教育局"), county.unit("czj", "县财政局")
    pid = registered(county, lead, cosigners=[co_signer])
    county.act(county.admin, pid, "assign", lead_unit=edu, co_units=[fin])
    county.act(county.as_unit(edu), pid, "start")
    county.act(county.as_unit(fin), pid, "co_opinion", text="同意主办意见")
    county.act(county.as_unit(edu), pid, "answer", category="B", text="正在推进")

    def answers(client):
        return client.get(f"/api/v1/proposals/{pid}").json()["answers"]
    assert answers(county.as_member(lead)) == [] and answers(county.as_member(co_signer)) == []
    assert answers(county.as_unit(fin)) == []          # a co-handler neither
    assert [a["text"] for a in answers(county.as_unit(edu))] == ["正在推进"]
    assert [a["released"] for a in answers(county.reviewer)] == [0]
    county.act(county.reviewer, pid, "send_back", reason="请写明时间表")
    county.act(county.as_unit(edu), pid, "answer", category="B", text="年内完成")
    county.act(county.reviewer, pid, "release")
    assert [a["text"] for a in answers(county.as_member(lead))] == ["年内完成"]
    # the office's export names the units, not their codes
    import io
    from openpyxl import load_workbook
    sheet = load_workbook(io.BytesIO(county.admin.get(
        "/api/v1/proposals/export.xlsx").content)).active
    rows = list(sheet.values)
    header, row = rows[0], rows[1]
    assert row[header.index("主办单位")] == "县教育局"
    assert row[header.index("协办单位")] == "县财政局"


def test_a_calendar_without_the_coming_years_holidays_is_flagged_to_operators(
        run_service, config, probe):
    year = date.today().year
    settings = dict(config["PROPOSALS"], calendar={"holidays": [f"{year - 1}-10-01"]})
    county = Platform(run_service, dict(config, PROPOSALS=settings), probe)
    ready = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
        Client(county.config).get("/readyz")), what="ready")
    assert any(f"{year} 年的节假日" in w for w in ready.json()["warnings"])
    metrics = Client(county.config).get("/metrics").text
    assert 'zhzx_calendar_uncovered_years{service="proposals"}' in metrics
    covered = dict(config["PROPOSALS"], calendar={"holidays": [
        f"{year}-10-01", f"{year + 1}-10-01"]})
    other = dict(with_port(config), PROPOSALS=covered)
    run_service(ProposalsService, other)
    assert "warnings" not in wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(
        Client(other).get("/readyz")), what="ready").json()
