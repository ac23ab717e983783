"""Pure notify rules: matching, recipients, templates, preferences, quiet
hours, digests, backoff and webhook signatures."""
from datetime import datetime, time

import pytest

from services.common.config import load_config
from services.notify import policy, rules
from tests.support import ROOT

RULE = {"id": "r1", "event": "proposal.reminder_due", "kind": "reminder",
        "when": {"key": True, "deadline": ["answer", "first_contact"]},
        "to": [{"unit": "lead_unit"}, {"leader": "supervisors"}],
        "title": "催办", "template": "《{{ title }}》{{ due }}到期"}


def event(**payload):
    return {"event_id": "e1", "type": "proposal.reminder_due", "payload": payload}


def test_a_rule_matches_on_type_and_values_and_names_every_recipient_once():
    rule = rules.Rule.of(RULE)
    hit = event(key=True, deadline="answer", lead_unit="jyj", supervisors=["王", "李", "王"],
                title="T", due="2026-09-10")
    assert rule.matches(hit)
    assert not rule.matches(event(key=False, deadline="answer"))
    assert not rule.matches(event(key=True, deadline="evaluation"))
    assert rule.recipients(hit) == ["unit:jyj", "leader:王", "leader:李"]
    assert rule.render(hit) == ("催办", "《T》2026-09-10到期")
    notes = rules.notifications(hit, [rule])
    assert [n["recipient"] for n in notes] == ["unit:jyj", "leader:王", "leader:李"]
    assert notes == rules.notifications(hit, [rule])  # same ids every time


def test_bad_rules_are_refused_with_their_id():
    with pytest.raises(rules.RuleError, match="r1"):
        rules.Rule.of(dict(RULE, to=[{"pigeon": "x"}]))
    with pytest.raises(rules.RuleError, match="r1"):
        rules.Rule.of(dict(RULE, template="{{ unclosed"))
    with pytest.raises(rules.RuleError, match="r1"):
        rules.Rule.of(RULE).render(event(key=True, deadline="answer"))  # no title in payload
    with pytest.raises(rules.RuleError):
        rules.load([RULE, RULE])


def test_the_platform_rules_load_and_the_sandbox_refuses_internals():
    loaded = rules.load(load_config(ROOT / "deploy" / "config" / "platform.yaml")
                        ["NOTIFY"]["rules"])
    assert len(loaded) >= 10
    sneaky = rules.Rule.of(dict(RULE, template="{{ title.__class__.__mro__ }}"))
    with pytest.raises(rules.RuleError):
        sneaky.render(event(title="T", due="x"))


def test_quiet_hours_wrap_midnight_and_end_in_the_morning():
    prefs = policy.Preferences.of({"quiet": {"start": "22:00", "end": "07:00"}})
    assert prefs.is_quiet(datetime(2026, 6, 1, 23, 0))
    assert prefs.is_quiet(datetime(2026, 6, 2, 6, 59))
    assert not prefs.is_quiet(datetime(2026, 6, 2, 7, 0))
    assert prefs.quiet_ends(datetime(2026, 6, 1, 23, 0)) == datetime(2026, 6, 2, 7, 0)
    assert prefs.quiet_ends(datetime(2026, 6, 2, 3, 0)) == datetime(2026, 6, 2, 7, 0)
    assert not policy.Preferences.of({"quiet": {"start": "00:00", "end": "00:00"}}).is_quiet(
        datetime(2026, 6, 1, 12, 0))


def test_hold_sends_urgent_now_defers_quiet_and_collects_digests():
    quiet = policy.Preferences.of({"quiet": {"start": "22:00", "end": "07:00"}})
    digest = policy.Preferences.of({"digest": True})
    night = datetime(2026, 6, 1, 23, 0)
    assert policy.hold({"urgent": 1}, quiet, night, time(8)) == ("send", None)
    assert policy.hold({"urgent": 0}, quiet, night, time(8)) == (
        "later", datetime(2026, 6, 2, 7, 0))
    assert policy.hold({"urgent": 0}, digest, night, time(8)) == ("digest", "2026-06-02")
    assert policy.hold({"urgent": 0}, digest, datetime(2026, 6, 2, 7, 0), time(8)) == (
        "digest", "2026-06-02")
    assert policy.hold({"urgent": 0, "digest_of": ["n"]}, quiet, night, time(8))[0] == "send"


def test_channels_per_kind_always_include_the_inbox():
    prefs = policy.Preferences.of({"channels": {"meeting": ["sms", "carrier-pigeon"]}},
                                  {"channels": {"default": ["email"]}})
    assert prefs.channels_for("meeting") == ["inbox", "sms"]
    assert prefs.channels_for("request") == ["inbox"]
    assert policy.Preferences.of(None, {"channels": {"default": ["email"]}}).channels_for(
        "x") == ["inbox", "email"]


def test_backoff_doubles_up_to_a_ceiling():
    assert [policy.backoff(n, 5, 60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_digest_text_numbers_the_items():
    title, body = policy.digest_text([{"title": "甲", "body": "一"}, {"title": "乙", "body": "二"}])
    assert title == "今日消息汇总（共 2 条）" and body == "1. 【甲】一\n2. 【乙】二"


def test_webhook_signature_verifies_and_expires():
    body = b'{"type": "proposal.assigned"}'
    header = f"t=1000,v1={policy.sign('s', 1000, body)}"
    assert policy.verify("s", header, body, now_ts=1100)
    assert not policy.verify("s", header, body + b" ", now_ts=1100)
    assert not policy.verify("s", header, body, now_ts=2000)
    assert not policy.verify("s", "garbage", body, now_ts=1000)


def test_dates_are_printed_as_people_write_them():
    assert rules.date_cn("2026-11-22") == "2026年11月22日"
    assert rules.date_cn("2026-06-17T09:00") == "2026年6月17日 09:00"
    assert rules.date_cn("soon") == "soon" and rules.date_cn(None) == ""


def test_each_deadline_is_named_in_the_platforms_reminder():
    platform = load_config(ROOT / "deploy" / "config" / "platform.yaml")
    rule = next(rules.Rule.of(r) for r in platform["NOTIFY"]["rules"]
                if r["id"] == "proposal-reminder-unit")
    texts = {d: rule.render(event(deadline=d, due="2026-09-10", number=12, title="T",
                                  working_days_left=3, after_due=late))[1]
             for d in ("first_contact", "answer") for late in (False,)}
    assert texts["first_contact"] == "提案第12号《T》的首次联系提案人期限为2026年9月10日，还剩 3 个工作日。"
    assert texts["answer"] == "提案第12号《T》的答复期限为2026年9月10日，还剩 3 个工作日。"
    late = rule.render(event(deadline="first_contact", due="2026-09-10", number=None, title="T",
                             working_days_left=-2, after_due=True))[1]
    assert late == "提案《T》的首次联系提案人期限为2026年9月10日，已经逾期，请尽快与提案人联系。"


def test_the_dispatch_notice_names_the_station_and_the_accept_deadline():
    platform = load_config(ROOT / "deploy" / "config" / "platform.yaml")
    rule = next(rules.Rule.of(r) for r in platform["NOTIFY"]["rules"]
                if r["id"] == "request-dispatched")
    hit = {"event_id": "e2", "type": "request.dispatched", "payload": {
        "title": "村口路灯不亮", "station_name": "王家庄村委员联络站",
        "accept_due": "2026-11-28T10:30:00"}}
    assert rule.render(hit)[1] == ("王家庄村委员联络站向您派发群众诉求“村口路灯不亮”，"
                                   "请于2026年11月28日 10:30前接单办理。")


def test_webhooks_go_only_to_allowed_hosts_and_never_follow_a_redirect():
    """A subscriber answering 302 to another host gets a failed delivery, and
    the other host nothing; a host not on the list is not even called."""
    from tests.fakes import HttpProvider
    from services.notify import channels
    elsewhere = HttpProvider().start()
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(302)
            self.send_header("Location", elsewhere.url + "/stolen")
            self.end_headers()

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = {"id": "oa", "url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                "secret": "s" * 32}
        with pytest.raises(channels.SendError, match="HTTP 302"):
            channels.send_webhook(hook, b"{}", "proposal.assigned",
                                  allowed_hosts=["127.0.0.1"])
        with pytest.raises(channels.SendError, match="webhook_hosts"):
            channels.send_webhook(dict(hook, url=elsewhere.url + "/hook"), b"{}",
                                  "proposal.assigned", allowed_hosts=["oa.example.gov.cn"])
        assert elsewhere.received == []
    finally:
        server.shutdown()
        elsewhere.stop()
    assert channels.host_allowed("https://a.example.org/x", ["*.example.org"])
    assert not channels.host_allowed("https://example.org.evil.cn/x", ["*.example.org"])
    assert not channels.host_allowed("file:///etc/passwd", ["*"])
