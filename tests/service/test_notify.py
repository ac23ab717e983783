"""Notifications from events to people, with a real broker, Mongo wire server,
SMTP server and HTTP providers, and the members and proposals services
answering the contact lookups."""
import json
import logging
import time
from datetime import datetime

import pytest
import requests
from kombu import Connection, Exchange, Producer

from services.common.envelope import make_event
from deploy.demo_data import members as demo
from services.members.service import MembersService
from services.notify import policy
from services.notify.service import NotifyService
from services.proposals.service import ProposalsService
from tests.fakes import HttpProvider, SmtpServer
from tests.support import Client, wait_until, with_port

pytestmark = pytest.mark.service

DAY = "2030-06-10"  # after the events arrive (deliveries are due from then)
SECRET = "webhook-secret-for-tests"


@pytest.fixture
def providers(infra):
    smtp = SmtpServer(infra.base).start()
    sms, wechat, hook = HttpProvider().start(), HttpProvider().start(), HttpProvider().start()
    yield smtp, sms, wechat, hook
    for p in (sms, wechat, hook):
        p.stop()
    smtp.stop()


class Platform:
    def __init__(self, run_service, config, providers, members=6, sms=True):
        self.smtp, self.sms, self.wechat, self.hook = providers
        self.config = dict(config, NOTIFY=dict(
            config["NOTIFY"], smtp=self.smtp.config(),
            # timeouts generous enough for a loaded machine; WeChat's is what the
            # hanging provider runs into
            sms={"url": self.sms.url + "/sms" if sms else "", "timeout": 5},
            wechat={"url": self.wechat.url + "/wechat", "timeout": 3,
                    "templates": {"meeting": "TPL-MEETING"}},
            webhooks=[{"id": "oa", "url": self.hook.url + "/hook", "secret": SECRET,
                       "events": ["proposal.assigned"]}], webhook_hosts=["127.0.0.1"],
            max_attempts=3, backoff_seconds=60,
            defaults={"channels": {"default": ["inbox", "email", "sms"]},
                      "quiet": {"start": "22:00", "end": "07:00"}, "digest": False}))
        members_conf, proposals_conf = with_port(config), with_port(config)
        run_service(MembersService, members_conf)
        run_service(ProposalsService, proposals_conf)
        run_service(NotifyService, self.config)
        admin = self.members_admin = Client(members_conf, "admin")
        resp = admin.post("/api/v1/members/import", headers={"Content-Type": "text/csv"},
                          data=demo.roster_csv(demo.members(members)))
        assert resp.status_code == 200 and resp.json()["created"] == members, resp.text
        self.members = {m["id"]: m for m in admin.get(
            f"/api/v1/members?limit={members}").json()["items"]}
        self.ids = sorted(self.members)
        self.emails = {m: admin.get(f"/api/v1/members/{m}").json()["email"] for m in self.ids}
        self.phones = {m: admin.get(f"/api/v1/members/{m}").json()["phone"] for m in self.ids}
        unit = Client(proposals_conf, "admin").post("/api/v1/units", json={
            "id": "jyj", "name": "县教育局", "kind": "government", "topics": ["教育"],
            "contacts": [{"name": "办公室", "phone": "13700000001",
                          "email": "jyj@example.org"}]})
        assert unit.status_code == 201, unit.text
        self.admin = Client(self.config, "admin")
        self.seq = 0

    def publish(self, source, etype, payload, event_id=None, aggregate="agg-1"):
        self.seq += 1
        event = make_event(etype, origin="140428", aggregate_id=aggregate, seq=self.seq,
                           payload=payload, actor="test")
        if event_id:
            event["event_id"] = event_id
        with Connection(self.config["AMQP_URI"]) as conn:
            Producer(conn.channel()).publish(
                event, exchange=Exchange(f"{source}.events", type="topic", durable=True),
                routing_key=etype, serializer="json", declare=[Exchange(
                    f"{source}.events", type="topic", durable=True)], retry=True)
        return event

    def inbox(self, recipient):
        role = recipient
        return Client(self.config, role).get("/api/v1/inbox").json()

    def wait_inbox(self, recipient, count):
        return wait_until(lambda: (lambda box: box if len(box["items"]) >= count else None)(
            self.inbox(recipient)), what=f"{count} notifications for {recipient}")

    def dispatch(self, at):
        resp = self.admin.post(f"/api/v1/notify/dispatch?now={at}", json={})
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def platform(run_service, config, providers):
    return Platform(run_service, config, providers)


def proposal(**extra):
    body = {"proposal_id": "140428-p1", "number": 12, "title": "关于加强校园周边交通安全的建议",
            "state": "assigned", "kind": "member", "type": "session", "year": 2026,
            "lead_member": None, "proposers": [], "lead_unit": "jyj", "co_units": [],
            "key": False}
    body.update(extra)
    return body


def test_each_rule_gives_the_expected_text_to_the_expected_people(platform):
    a, b, c = platform.ids[:3]
    platform.publish("proposals", "proposal.assigned", proposal(
        deadlines={"first_contact": "2026-06-20", "answer": "2026-09-10"}))
    platform.publish("proposals", "proposal.cosign_requested",
                     proposal(state="cosigning", invited=[a, b], due="2026-06-15"))
    platform.publish("proposals", "proposal.answer_released",
                     proposal(state="awaiting_evaluation", proposers=[a], answer_category="A"))
    platform.publish("proposals", "proposal.reminder_due", proposal(
        key=True, supervisors=["王副主席"], deadline="answer", due="2026-09-10",
        working_days_left=3, after_due=False, evaluators=[]))
    platform.publish("proposals", "proposal.reminder_due", proposal(
        state="awaiting_evaluation", deadline="evaluation", due="2026-10-01",
        working_days_left=5, after_due=False, supervisors=[], evaluators=[b]))
    platform.publish("proposals", "proposal.reassigned", proposal(
        lead_unit="jyj", deadlines={"answer": "2026-09-30"}))
    platform.publish("liaison", "request.dispatched", {
        "request_id": "RQ1", "station_id": "s1", "state": "dispatched", "category": "appeal",
        "title": "村口路灯不亮", "member_id": c, "year": 2026})
    platform.publish("liaison", "opinion.adopted", {
        "opinion_id": "OP1", "title": "关于农村助餐的建议", "author_member": a,
        "state": "reported", "year": 2026, "level": "province"})
    platform.publish("members", "meeting.notice_due", {
        "meeting_id": "M1", "kind": "plenary", "title": "政协第十届委员会第五次会议",
        "place": "县会议中心", "starts_at": "2026-06-17T09:00", "ends_on": "2026-06-19",
        "term": "第十届", "year": 2026, "invitees": [a, b, c], "days_ahead": 7})
    platform.publish("members", "meeting.leave_decided", {
        "meeting_id": "M1", "kind": "plenary", "title": "政协第十届委员会第五次会议",
        "place": "县会议中心", "starts_at": "2026-06-17T09:00", "ends_on": "2026-06-19",
        "term": "第十届", "year": 2026, "invitees": [a, b, c], "member_id": b,
        "approved": True})

    unit = platform.wait_inbox("unit:jyj", 3)
    texts = {n["rule"]: n["body"] for n in unit["items"]}
    assert texts["proposal-reassigned"] == (
        "提案第12号《关于加强校园周边交通安全的建议》已重新交办，请于2026年9月30日前答复。")
    assert texts["proposal-assigned"] == (
        "您单位收到交办提案第12号《关于加强校园周边交通安全的建议》， "
        "请于2026年6月20日前与提案人联系，2026年9月10日前答复。")
    assert texts["proposal-reminder-unit"] == (
        "提案第12号《关于加强校园周边交通安全的建议》的答复期限为2026年9月10日，还剩 3 个工作日。")
    assert unit["unread"] == 3
    leader = platform.wait_inbox("leader:王副主席", 1)["items"][0]
    assert leader["body"] == ("您督办的重点提案《关于加强校园周边交通安全的建议》"
                              "的答复期限为2026年9月10日，尚未完成。")
    rules_a = {n["rule"]: n["body"] for n in platform.wait_inbox(f"member:{a}", 4)["items"]}
    assert set(rules_a) == {"proposal-cosign", "proposal-answer", "opinion-adopted",
                            "meeting-notice"}
    assert rules_a["opinion-adopted"] == "您报送的社情民意《关于农村助餐的建议》已被省级采用。"
    assert rules_a["meeting-notice"] == (
        "定于2026年6月17日 09:00在县会议中心召开政协第十届委员会第五次会议，请准时参加；如不能参加请提前请假。")
    rules_b = {n["rule"]: n["body"] for n in platform.wait_inbox(f"member:{b}", 4)["items"]}
    assert rules_b["meeting-leave-decided"] == "您的政协第十届委员会第五次会议请假申请已批准。"
    assert rules_b["proposal-reminder-evaluation"] == (
        "您的提案《关于加强校园周边交通安全的建议》已答复，请于2026年10月1日前作出评价。")
    rules_c = {n["rule"] for n in platform.wait_inbox(f"member:{c}", 2)["items"]}
    assert rules_c == {"request-dispatched", "meeting-notice"}

    # e-mail and SMS for each, on the platform's default channels
    report = platform.dispatch(f"{DAY}T10:00")
    assert report["failed"] == 0 and report["sent"] > 10
    mails = platform.smtp.messages()
    to_a = [m for m in mails if m["to"] == platform.emails[a]]
    assert {m["subject"] for m in to_a} == {"联名提案邀请", "提案已答复，请评价", "社情民意采用通知",
                                            "会议通知"}
    assert any(m["to"] == "jyj@example.org" and m["subject"] == "提案交办通知" for m in mails)
    sms_to_a = [r["json"] for r in platform.sms.received if r["json"]["to"] == [platform.phones[a]]]
    assert len(sms_to_a) == 4
    # the webhook subscriber got the assigned event, signed
    hooks = platform.hook.received
    assert len(hooks) == 1 and hooks[0]["json"]["type"] == "proposal.assigned"
    assert policy.verify(SECRET, hooks[0]["headers"]["X-Zhzx-Signature"], hooks[0]["raw"],
                         time.time())
    assert not policy.verify("other", hooks[0]["headers"]["X-Zhzx-Signature"],
                             hooks[0]["raw"], time.time())
    # a leader without a contact: inbox only, the e-mail delivery is skipped, not failed
    skipped = platform.admin.get("/api/v1/deliveries?recipient=leader:王副主席").json()
    assert {d["state"] for d in skipped["items"]} == {"skipped"}

    # read: unread count goes down
    me = Client(platform.config, f"member:{a}")
    first = me.get("/api/v1/inbox").json()["items"][0]["id"]
    assert me.post(f"/api/v1/inbox/{first}/read", json={}).json()["unread"] == 3
    assert me.get("/api/v1/inbox/unread-count").json()["unread"] == 3
    assert Client(platform.config, f"member:{b}").post(f"/api/v1/inbox/{first}/read",
                                                        json={}).status_code == 403
    assert me.post("/api/v1/inbox/read-all", json={}).json()["marked"] == 3
    assert Client(platform.config, "admin", org="140400").get(
        f"/api/v1/inbox?recipient=member:{a}").status_code == 403


def test_a_redelivered_event_notifies_nobody_twice(platform):
    a = platform.ids[0]
    body = {"opinion_id": "OP1", "title": "关于农村助餐的建议", "author_member": a,
            "state": "reported", "year": 2026, "level": "city"}
    event = platform.publish("liaison", "opinion.adopted", body)
    platform.wait_inbox(f"member:{a}", 1)
    platform.publish("liaison", "opinion.adopted", body, event_id=event["event_id"])
    platform.publish("liaison", "opinion.instructed", dict(body, leader="县长"))
    box = platform.wait_inbox(f"member:{a}", 2)
    assert sorted(n["rule"] for n in box["items"]) == ["opinion-adopted", "opinion-instructed"]
    platform.dispatch(f"{DAY}T10:00")
    platform.dispatch(f"{DAY}T10:01")
    assert len([m for m in platform.smtp.messages() if m["to"] == platform.emails[a]]) == 2


def test_a_failing_provider_retries_then_fails_visibly_without_blocking_email(platform):
    # b is one of the demo members with a WeChat openid (every other one has one)
    a = platform.ids[0]
    b = next(m for m in platform.ids[1:]
             if platform.members_admin.get(f"/api/v1/members/{m}").json()["wechat_openid"])
    platform.sms.mode = "fail"
    platform.wechat.mode = "hang"
    Client(platform.config, f"member:{b}").request(
        "PUT", f"/api/v1/preferences/member:{b}",
        json={"channels": {"default": ["inbox", "email", "wechat"]}})
    for member in (a, b):
        platform.publish("liaison", "request.dispatched", {
            "request_id": f"RQ-{member}", "station_id": "s1", "state": "dispatched",
            "category": "appeal", "title": "村口路灯不亮", "member_id": member, "year": 2026},
            aggregate=f"RQ-{member}")
    platform.wait_inbox(f"member:{a}", 1)
    platform.wait_inbox(f"member:{b}", 1)
    first = platform.dispatch(f"{DAY}T10:00")
    assert first["sent"] == 2 and first["retrying"] == 2, (first, [
        (d["channel"], d["state"], d.get("error")) for d in platform.admin.get(
            "/api/v1/deliveries").json()["items"]])   # e-mails out; SMS and WeChat not
    assert {m["to"] for m in platform.smtp.messages()} == {platform.emails[a],
                                                            platform.emails[b]}
    # backoff: nothing is due again until 60 s later, then 120 s
    assert platform.dispatch(f"{DAY}T10:00:30")["retrying"] == 0
    assert platform.dispatch(f"{DAY}T10:01:01")["retrying"] == 2
    last = platform.dispatch(f"{DAY}T10:03:02")
    assert last["failed"] == 2
    failed = platform.admin.get("/api/v1/deliveries?state=failed").json()
    assert sorted(d["channel"] for d in failed["items"]) == ["sms", "wechat"]
    errors = {d["channel"]: d["error"] for d in failed["items"]}
    assert all(d["attempts"] == 3 for d in failed["items"])
    assert "HTTP 503" in errors["sms"] and "timed out" in errors["wechat"]
    assert not any(platform.phones[m] in json.dumps(errors) for m in (a, b))
    metrics = requests.get(f"http://{platform.config['WEB_SERVER_ADDRESS']}/metrics").text
    assert 'zhzx_notify_deliveries_total{channel="sms",outcome="failed"}' in metrics
    assert 'zhzx_notify_retries_total{channel="wechat"}' in metrics
    # after the provider recovers, the office retries one by hand
    platform.sms.mode = "ok"
    sms_id = next(d["id"] for d in failed["items"] if d["channel"] == "sms")
    assert platform.admin.post(f"/api/v1/deliveries/{sms_id}/retry", json={}).status_code == 200
    assert platform.dispatch(f"{DAY}T10:05")["sent"] == 1


def test_quiet_hours_hold_until_morning_except_urgent_and_the_digest_merges(platform):
    a, b = platform.ids[:2]
    me = Client(platform.config, f"member:{b}")
    resp = me.request("PUT", f"/api/v1/preferences/member:{b}", json={
        "channels": {"default": ["email"]}, "digest": True})
    assert resp.status_code == 200 and resp.json()["effective"]["digest"] is True
    bad = me.request("PUT", f"/api/v1/preferences/member:{b}", json={
        "channels": {"default": ["pigeon"]}, "quiet": {"start": "25:00", "end": "07:00"}})
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"channels", "quiet.start"}
    for i, member in enumerate((a, b, a, b)):
        platform.publish("liaison", "opinion.adopted", {
            "opinion_id": f"OP{i}", "title": f"建议{i}", "author_member": member,
            "state": "reported", "year": 2026, "level": "city"}, aggregate=f"OP{i}")
    platform.publish("liaison", "request.overdue", {
        "request_id": "RQ9", "station_id": "s1", "state": "accepted", "category": "appeal",
        "title": "路灯", "member_id": a, "year": 2026, "stage": "close", "due": "x",
        "escalate_to": "office"})
    platform.wait_inbox(f"member:{a}", 3)
    platform.wait_inbox(f"member:{b}", 2)
    night = platform.dispatch(f"{DAY}T23:30")
    # a: the urgent overdue notice goes out now (email + sms), the rest waits for 07:00;
    # b: held for the digest; the station's contacts cannot be fetched (no liaison
    # running here): its deliveries retry without holding up the others
    assert night["sent"] == 2 and night["retrying"] == 2
    station = platform.admin.get("/api/v1/deliveries?recipient=station:s1").json()["items"]
    assert {d["error"] for d in station} == {"SendError: contacts unavailable (owning service down)"}
    assert [m["subject"] for m in platform.smtp.messages()] == ["群众诉求超期提醒"]
    assert platform.dispatch("2030-06-11T06:59")["sent"] == 0
    morning = platform.dispatch("2030-06-11T07:00")
    assert morning["sent"] == 4  # a's two e-mails and two SMS
    assert not [m for m in platform.smtp.messages() if m["to"] == platform.emails[b]]
    digest = platform.dispatch("2030-06-11T08:00")
    assert digest["digested"] == 2 and digest["sent"] == 1
    assert platform.dispatch("2030-06-11T08:00:01")["sent"] == 0
    to_b = [m for m in platform.smtp.messages() if m["to"] == platform.emails[b]]
    assert len(to_b) == 1 and to_b[0]["subject"] == "今日消息汇总（共 2 条）"
    assert "1. 【社情民意采用通知】您报送的社情民意《建议1》已被市级采用。" in to_b[0]["body"]


def test_a_notice_to_every_member_is_one_delivery_per_person_and_channel(
        run_service, config, providers, caplog):
    caplog.set_level(logging.INFO)
    platform = Platform(run_service, config, providers, members=60)
    ids = platform.ids
    platform.publish("members", "meeting.notice_due", {
        "meeting_id": "M2", "kind": "plenary", "title": "全体委员会议", "place": "县会议中心",
        "starts_at": "2026-06-17T09:00", "ends_on": "2026-06-17", "term": "第十届",
        "year": 2026, "invitees": ids, "days_ahead": 7})
    wait_until(lambda: all(platform.inbox(f"member:{m}")["unread"] == 1 for m in ids),
               what="notices in the inboxes")
    report = platform.dispatch(f"{DAY}T10:00")
    assert report["sent"] == 2 * len(ids) and report["failed"] == 0, (
        report, platform.admin.get("/api/v1/deliveries?state=pending").json())
    mails = platform.smtp.messages()
    assert sorted(m["to"] for m in mails) == sorted(platform.emails.values())
    assert len(platform.sms.received) == len(ids)
    everything = json.dumps(platform.sms.received[0]["json"], ensure_ascii=False)
    assert "全体委员会议" in everything
    # contacts were used, never stored or logged
    stored = platform.admin.get("/api/v1/deliveries?limit=500").json()
    dumped = json.dumps(stored, ensure_ascii=False)
    assert not any(p in dumped for p in platform.phones.values())
    assert not any(e in dumped for e in platform.emails.values())
    assert not any(p in caplog.text for p in platform.phones.values())
    metrics = requests.get(f"http://{platform.config['WEB_SERVER_ADDRESS']}/metrics").text
    assert not any(p in metrics for p in platform.phones.values())
    assert datetime.fromisoformat(report["now"]).date().isoformat() == DAY
    # the office pages through the 120 deliveries with the kernel's cursor; a limit
    # outside 1–1000 or a forged cursor is a 422, never everything or a 500
    seen, cursor = [], None
    for _ in range(10):
        page = platform.admin.get("/api/v1/deliveries", params=dict(
            {"limit": 50}, **({"cursor": cursor} if cursor else {}))).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == page["count"] == 2 * len(ids)
    for bad in ({"limit": 0}, {"limit": 5000}, {"cursor": "eyJ4Ijp7IiRuZSI6MX19"},
                {"cursor": "not base64!"}):
        resp = platform.admin.get("/api/v1/deliveries", params=bad)
        assert resp.status_code == 422, (bad, resp.text)
        assert set(resp.json()["errors"]) <= {"limit", "cursor"}
        box = Client(platform.config, f"member:{ids[0]}").get("/api/v1/inbox", params=bad)
        assert box.status_code == 422, (bad, box.text)
    first = Client(platform.config, f"member:{ids[1]}").get("/api/v1/inbox?limit=1").json()
    assert len(first["items"]) == 1 and first["next_cursor"] is None


def test_a_station_is_reached_at_its_contacts_fetched_from_liaison(
        run_service, config, providers):
    from services.liaison.service import LiaisonService
    platform = Platform(run_service, config, providers, members=2)
    liaison_conf = with_port(config)
    run_service(LiaisonService, liaison_conf)
    a = platform.ids[0]
    resp = Client(liaison_conf, "admin").post("/api/v1/stations", json={
        "id": "st1", "name": "城南社区委员联络站", "kind": "liaison", "place_code": "140428100201",
        "members": [a], "contacts": [{"name": "站长", "email": "st1@example.org",
                                      "phone": "13700000009"}]})
    assert resp.status_code == 201 and resp.json()["contacts"][0]["email"] == "st1@example.org"
    assert "contacts" not in Client(liaison_conf, f"member:{a}").get(
        "/api/v1/stations/st1").json()
    platform.publish("liaison", "request.overdue", {
        "request_id": "RQ9", "station_id": "st1", "state": "accepted", "category": "appeal",
        "title": "路灯", "member_id": a, "year": 2026, "stage": "close", "due": "2026-06-01",
        "escalate_to": "office"})
    platform.wait_inbox("station:st1", 1)
    assert platform.dispatch(f"{DAY}T10:00")["failed"] == 0
    to_station = [m for m in platform.smtp.messages() if m["to"] == "st1@example.org"]
    assert len(to_station) == 1 and to_station[0]["subject"] == "群众诉求超期提醒"
    assert [r["json"]["to"] for r in platform.sms.received].count(["13700000009"]) == 1


def test_a_channel_without_a_provider_is_never_chosen_and_mail_is_signed_by_the_platform(
        run_service, config, providers):
    """No SMS gateway configured: notices go to the inbox and by e-mail only,
    nothing waits for a gateway that does not exist; the e-mail is signed
    with the platform's own name."""
    platform = Platform(run_service, dict(config, ORG_NAME="黎城县"), providers, members=3,
                        sms=False)
    platform.publish("members", "meeting.notice_due", {
        "meeting_id": "M9", "kind": "plenary", "title": "政协第十届委员会第六次会议",
        "place": "县会议中心", "starts_at": "2026-06-17T09:00", "ends_on": "2026-06-19",
        "term": "第十届", "year": 2026, "invitees": platform.ids, "days_ahead": 7})
    for member in platform.ids:
        platform.wait_inbox(f"member:{member}", 1)
    deliveries = platform.admin.get("/api/v1/deliveries?limit=100").json()
    assert {d["channel"] for d in deliveries["items"]} == {"email"}
    platform.dispatch(f"{DAY}T10:00")
    ours = set(platform.emails.values())
    mails = wait_until(lambda: [m for m in platform.smtp.messages() if m["to"] in ours],
                       what="the e-mails")
    assert all(m["from"].startswith("黎城县政协") for m in mails), mails[0]["from"]


def test_imported_history_notifies_nobody(platform):
    c = platform.ids[2]
    dispatched = {"request_id": "RQ7", "station_id": "s1", "state": "dispatched",
                  "category": "appeal", "title": "去年的路灯维修", "member_id": c, "year": 2025}
    platform.publish("liaison", "request.dispatched", dict(dispatched, imported=True))
    platform.publish("liaison", "request.dispatched", dict(dispatched, request_id="RQ8",
                                                           title="今天的路灯维修", year=2026))
    box = platform.wait_inbox(f"member:{c}", 1)   # one queue: the first was handled before
    assert [n["body"] for n in box["items"]] == ["联络站向您派发群众诉求“今天的路灯维修”，请及时接单办理。"]


def test_the_office_and_the_stations_have_inboxes_for_what_they_must_act_on(platform):
    platform.publish("liaison", "opinion.submitted", {
        "opinion_id": "OP9", "title": "关于农村饮水安全的建议", "author_member": platform.ids[0],
        "station_id": None, "state": "submitted", "year": 2026, "category": None})
    platform.publish("liaison", "task.received", {
        "task_id": "T1", "kind": "research", "title": "农村养老服务调研", "due_on": "2026-12-20",
        "state": "received", "source_org": "140400"})
    platform.publish("liaison", "request.declined", {
        "request_id": "RQ5", "station_id": "s1", "state": "filed", "category": "appeal",
        "title": "村口路灯不亮", "member_id": None, "year": 2026, "reason": "外出"})
    office = wait_until(lambda: (lambda box: box if len(box["items"]) >= 2 else None)(
        platform.admin.get("/api/v1/inbox").json()), what="the office inbox")
    assert office["recipient"] == "office:committee"    # what an admin reads by default
    assert sorted(n["body"] for n in office["items"]) == [
        "收到社情民意《关于农村饮水安全的建议》，请及时受理编辑。",
        "收到长治市政协交办的任务《农村养老服务调研》，请于2026年12月20日前完成并报告。"]
    station = platform.wait_inbox("station:s1", 1)
    assert station["items"][0]["body"] == "委员未接派发的群众诉求“村口路灯不亮”（外出），请重新派单。"
    deliveries = platform.admin.get("/api/v1/deliveries?limit=100").json()["items"]
    assert not [d for d in deliveries if d["recipient"].startswith("office:")]   # inbox only


def test_a_citizen_is_told_of_the_close_on_the_channel_the_station_recorded(
        run_service, config, providers):
    """The contact never travels in the event: notify asks liaison for it at
    send time and uses the channel it is (a mobile number: SMS)."""
    from services.liaison.service import LiaisonService
    platform = Platform(run_service, config, providers, members=2)
    liaison_conf = with_port(config)
    run_service(LiaisonService, liaison_conf)
    a = platform.ids[0]
    staff = Client(liaison_conf, "station:st2", sub="staff-st2")
    assert Client(liaison_conf, "admin").post("/api/v1/stations", json={
        "id": "st2", "name": "城北社区委员联络站", "kind": "liaison",
        "place_code": "140428100201", "members": [a]}).status_code == 201
    filed = staff.post("/api/v1/requests", json={
        "station_id": "st2", "category": "appeal", "title": "小区路灯不亮",
        "description": "三号楼前路灯坏了", "contact": "139 0000 1234", "channel": "phone"})
    assert filed.status_code == 201, filed.text
    rid = filed.json()["id"]
    for action, client, body in (("dispatch", staff, {"member_id": a}),
                                 ("accept", Client(liaison_conf, f"member:{a}"), {}),
                                 ("close", staff, {"result": "已更换灯泡", "resolved": True})):
        resp = client.post(f"/api/v1/requests/{rid}/actions/{action}", json=body)
        assert resp.status_code == 200, (action, resp.text)
    # the citizen's own SMS, not just any (the member's dispatch notice may come first)
    wait_until(lambda: any(d["recipient"].startswith("citizen:") for d in platform.admin.get(
        "/api/v1/deliveries?channel=sms").json()["items"]), what="the citizen's SMS queued")
    assert platform.dispatch(f"{DAY}T10:00")["failed"] == 0
    told = [r["json"] for r in platform.sms.received if r["json"]["to"] == ["13900001234"]]
    assert len(told) == 1 and told[0]["text"].startswith("您反映的“小区路灯不亮”已办结，问题已解决")
