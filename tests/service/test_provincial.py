"""The provincial adapter at a city, against the provincial platform's
simulator as a real HTTP server, on a real broker and Mongo wire server: what
arrives at the province is judged by the simulator's own records."""
import secrets

import pytest

from deploy.demo_data import members as demo
from deploy.local import ProvinceSim, free_port
from services.liaison.service import LiaisonService
from services.members.service import MembersService
from services.proposals.service import ProposalsService
from services.provincial.service import ProvincialService
from tests.support import Client, wait_until, with_port

pytestmark = pytest.mark.service
CITY, PROVINCE = "140400", "140000"


@pytest.fixture
def province(infra, tmp_path):
    secret = secrets.token_hex(24)
    sim = ProvinceSim(tmp_path / "province", free_port(), {CITY: {"secret": secret}})
    sim.start()
    sim.secret = secret
    yield sim
    sim.stop()


class City:
    def __init__(self, run_service, config, province, secret=None, **settings):
        self.run_service, self.province, self.extra = run_service, province, settings
        self.config = dict(config, ORG_CODE=CITY, ORG_NAME="长治市", ORG_LEVEL="city",
                           PARENT_ORG=PROVINCE, PARENT_ORG_NAME="山西省", CHILD_ORGS="")
        self.members_conf = with_port(self.config)
        run_service(MembersService, self.members_conf)
        run_service(LiaisonService, self.config)
        self.proposals_conf = with_port(self.config)
        run_service(ProposalsService, self.proposals_conf)
        self.adapter_conf = self.adapter_config(secret or province.secret)
        self.adapter = run_service(ProvincialService, self.adapter_conf)
        members_admin = Client(self.members_conf, "admin", org=CITY)
        resp = members_admin.post("/api/v1/members/import", data=demo.roster_csv(
            demo.members(3)), headers={"Content-Type": "text/csv"})
        assert resp.status_code == 200, resp.text
        self.author = sorted(m["id"] for m in members_admin.get(
            "/api/v1/members?limit=5").json()["items"])[0]
        self.office = Client(self.config, "admin", org=CITY)
        self.ops = Client(self.adapter_conf, "admin", org=CITY)

    def adapter_config(self, secret):
        return dict(with_port(self.config), PROVINCE_URL=self.province.url,
                    PROVINCE_SECRET=secret, PROVINCIAL=dict(
                        self.config["PROVINCIAL"], **dict(dict(
                            breaker_reset_seconds=1, breaker_failures=3, lease_seconds=5,
                            figures_seconds=0),
                            **self.extra)))

    def restart_adapter(self, secret):
        self.adapter.stop()
        self.run_service.started.remove(self.adapter)
        self.adapter_conf = dict(self.adapter_config(secret),
                                 WEB_SERVER_ADDRESS=self.adapter_conf["WEB_SERVER_ADDRESS"])
        self.adapter = self.run_service(ProvincialService, self.adapter_conf)

    def reported(self, title="关于加快农村寄递物流建设的建议", category="社会民生"):
        """An item submitted, accepted, issued and reported to the province."""
        resp = self.office.post("/api/v1/opinions", json={
            "title": title, "content": "农村快递末端网点少，群众取件难。", "category": category,
            "author_member": self.author})
        assert resp.status_code == 201, resp.text
        oid = resp.json()["id"]
        for action, body in (("accept", {}), ("issue", {}), ("report", {"level": "province"})):
            resp = self.office.post(f"/api/v1/opinions/{oid}/actions/{action}", json=body)
            assert resp.status_code == 200, (action, resp.text)
        return oid

    def records(self):
        return self.province.admin("GET", "records?kind=opinions")["items"]

    def delivery(self, oid):
        return self.ops.get(f"/api/v1/deliveries/opinion:{oid}").json()


@pytest.fixture
def city(run_service, config, province):
    return City(run_service, config, province)


def test_an_item_reaches_the_province_once_and_its_adoption_comes_back(city):
    oid = city.reported()
    [record] = wait_until(lambda: city.records() or None, timeout=60,
                          what="the item at the province")
    body = record["body"]
    assert (record["org"], record["local_id"]) == (CITY, oid)
    assert body["path"] == [CITY, PROVINCE] and body["category"] == "04"
    assert body["author"]["name"] and body["author"]["sector"].startswith("S")
    assert body["local_number"].startswith("《社情民意》")
    delivery = wait_until(lambda: (lambda d: d if d["state"] == "acknowledged" else None)(
        city.delivery(oid)), timeout=30, what="the delivery acknowledged")
    assert delivery["record_id"] == record["id"] and delivery["attempts"] == 1
    # the provincial office adopts it, and a leader instructs on it: both come back
    city.province.admin("POST", f"records/{record['id']}/adopt",
                        {"issue": "《山西政协社情民意》", "number": 12})
    city.province.admin("POST", f"records/{record['id']}/instruct",
                        {"leader": "副省长", "text": "请省农业农村厅研究。"})
    item = wait_until(lambda: (lambda o: o if o["adopted"].get("province")
                               and o["instructions"] else None)(
        city.office.get(f"/api/v1/opinions/{oid}").json()), timeout=60,
        what="the province's feedback on the item")
    assert "12" in item["adopted"]["province"]["note"]
    assert item["instructions"][0]["leader"] == "副省长"
    assert city.province.admin("GET", "stats").get("same_item_twice", 0) == 0


def test_the_province_away_during_200_items_gets_each_once_after(city):
    city.province.admin("POST", "faults", {"outage_seconds": 8})
    ids = {city.reported(title=f"关于第{n}项民生实事的建议") for n in range(200)}
    records = wait_until(lambda: (lambda r: r if len(r) >= 200 else None)(city.records()),
                         timeout=240, what="all 200 items at the province")
    assert sorted(r["local_id"] for r in records) == sorted(ids)
    stats = city.province.admin("GET", "stats")
    assert stats.get("same_item_twice", 0) == 0
    assert stats.get("refused_outage", 0) > 0    # it really was away
    health = city.ops.get("/api/v1/province/health").json()
    wait_until(lambda: city.ops.get("/api/v1/province/health").json()["backlog"] == 0,
               timeout=60, what="an empty backlog")
    assert health["endpoint"] == city.province.url


def test_an_unmapped_category_parks_only_its_own_item_until_retried(city):
    odd = city.reported(title="关于设立夜间经济示范街的建议", category="夜间经济")
    fine = city.reported()
    wait_until(lambda: [r["local_id"] for r in city.records()] == [fine], timeout=60,
               what="the mapped item at the province")
    parked = wait_until(lambda: (lambda d: d if d["state"] == "refused" else None)(
        city.delivery(odd)), timeout=30, what="the unmapped item parked")
    assert parked["last_error"]["code"] == "UNMAPPED" and "夜间经济" in \
        parked["last_error"]["message"]
    listed = city.ops.get("/api/v1/deliveries?state=refused").json()
    assert [d["id"] for d in listed["items"]] == [f"opinion:{odd}"]
    # a retry without the mapping parks it again; nothing else moves
    assert city.ops.post(f"/api/v1/deliveries/opinion:{odd}/retry", json={}).status_code == 200
    wait_until(lambda: city.delivery(odd)["state"] == "refused" and
               city.delivery(odd)["attempts"] == 1, timeout=30, what="parked again")
    assert len(city.records()) == 1


def test_a_wrong_secret_is_refused_visibly_and_nothing_is_lost(city):
    city.restart_adapter("not-the-" + city.province.secret)
    oid = city.reported()
    health = wait_until(lambda: (lambda h: h if h["last_error"] else None)(
        city.ops.get("/api/v1/province/health").json()), timeout=30,
        what="the refusal shown")
    assert health["last_error"]["code"] == "AUTH_SIGNATURE" and health["backlog"] == 1
    assert city.delivery(oid)["state"] in ("pending", "sending") and city.records() == []
    assert city.province.admin("GET", "stats").get("refused_AUTH_SIGNATURE", 0) > 0
    city.restart_adapter(city.province.secret)
    wait_until(lambda: [r["local_id"] for r in city.records()] == [oid], timeout=60,
               what="the item once the secret is right")


def test_a_429_storm_is_honoured(city):
    city.province.admin("POST", "faults", {"storm_seconds": 4, "storm_retry_after": 3})
    oid = city.reported()
    waited = wait_until(lambda: (lambda d: d if (d.get("last_error") or {}).get("code")
                                 == "RATE_LIMITED" else None)(city.delivery(oid)),
                        timeout=30, what="a 429 answered")
    # the next attempt is not before Retry-After
    from datetime import datetime
    assert (datetime.fromisoformat(waited["next_at"]) -
            datetime.fromisoformat(waited["last_error"]["at"])).total_seconds() >= 3
    wait_until(lambda: [r["local_id"] for r in city.records()] == [oid], timeout=60,
               what="the item after the storm")


def signed_callback(secret, body, *, stamp=None, app=PROVINCE):
    """A callback signed independently of the adapter's code (stdlib HMAC)."""
    import hashlib
    import hmac
    import time
    import uuid
    stamp = int(time.time() * 1000) if stamp is None else stamp
    nonce = uuid.uuid4().hex
    text = "\n".join(["POST", "/api/v1/province/callbacks", "", str(stamp), nonce,
                      hashlib.new("sm3", body).hexdigest()])
    return {"X-App-Id": app, "X-Timestamp": str(stamp), "X-Nonce": nonce,
            "Content-Type": "application/json",
            "X-Signature": hmac.new(secret.encode(), text.encode(),
                                    lambda: hashlib.new("sm3")).hexdigest()}


def test_callbacks_apply_feedback_and_forged_stale_or_replayed_ones_are_refused(
        run_service, config, province):
    import json
    import time
    import requests
    city = City(run_service, config, province, pull_seconds=10 ** 6)   # callbacks only
    url = f"http://{city.adapter_conf['WEB_SERVER_ADDRESS']}/api/v1/province/callbacks"
    province.stop()
    province.apps[CITY]["callback"] = url
    province.start()
    oid = city.reported()
    [record] = wait_until(lambda: city.records() or None, timeout=60, what="the item")
    wait_until(lambda: city.delivery(oid)["state"] == "acknowledged", timeout=30,
               what="acknowledged")
    province.admin("POST", f"records/{record['id']}/adopt", {"number": 3})
    wait_until(lambda: city.office.get(f"/api/v1/opinions/{oid}").json()["adopted"].get(
        "province"), timeout=30, what="the adoption pushed by callback")

    def instructions():
        return city.office.get(f"/api/v1/opinions/{oid}").json()["instructions"]
    body = json.dumps({"items": [{"cursor": "900", "kind": "opinion_instructed",
                                  "record_id": record["id"], "leader": "省长",
                                  "text": "阅", "level": "province"}]}).encode()
    forged = requests.post(url, data=body, headers=signed_callback("x" * 48, body), timeout=10)
    assert forged.status_code == 401 and forged.json()["code"] == "AUTH_SIGNATURE"
    stale = requests.post(url, data=body, timeout=10, headers=signed_callback(
        province.secret, body, stamp=int((time.time() - 400) * 1000)))
    assert stale.status_code == 401 and stale.json()["code"] == "AUTH_TIMESTAMP"
    other = requests.post(url, data=body, timeout=10,
                          headers=signed_callback(province.secret, body, app="140900"))
    assert other.status_code == 401 and other.json()["code"] == "AUTH_APP"
    assert requests.post(url, data=body, timeout=10).status_code == 401   # unsigned
    assert instructions() == []
    headers = signed_callback(province.secret, body)
    first = requests.post(url, data=body, headers=headers, timeout=10)
    assert first.status_code == 200 and first.json() == {"accepted": 1}
    replayed = requests.post(url, data=body, headers=headers, timeout=10)
    assert replayed.status_code == 401 and replayed.json()["code"] == "AUTH_NONCE_REUSED"
    wait_until(lambda: [i["leader"] for i in instructions()] == ["省长"], timeout=30,
               what="the one instruction")


def test_reconciliation_finds_feedback_that_never_came(run_service, config, province):
    city = City(run_service, config, province, pull_seconds=10 ** 6)   # no pull, no callback
    oid = city.reported()
    [record] = wait_until(lambda: city.records() or None, timeout=60, what="the item")
    wait_until(lambda: city.delivery(oid)["state"] == "acknowledged", timeout=30,
               what="acknowledged")
    province.admin("POST", f"records/{record['id']}/national", {})
    assert "national" not in city.office.get(f"/api/v1/opinions/{oid}").json()["reported"]
    resp = city.ops.post("/api/v1/province/reconcile", json={})
    assert resp.status_code == 200 and resp.json()["applied"] == 1
    wait_until(lambda: "national" in city.office.get(f"/api/v1/opinions/{oid}").json()[
        "reported"], timeout=30, what="the national report found by reconciliation")
    assert city.ops.post("/api/v1/province/reconcile", json={}).json()["applied"] == 0


def test_the_adapter_killed_mid_batch_loses_and_doubles_nothing(run_service, config, province,
                                                                tmp_path):
    """The adapter as its own process (``nameko run``), SIGKILLed while the
    province answers slowly; started again, it sends what was left, the one
    in flight again under the same key."""
    import os
    import signal
    import requests
    import yaml
    from deploy.local import read_pid, start_service, stop_pid
    city = City(run_service, config, province, lease_seconds=3)
    city.adapter.stop()
    run_service.started.remove(city.adapter)
    conf = dict(city.adapter_conf, PROVINCIAL=dict(city.adapter_conf["PROVINCIAL"]))
    path = tmp_path / "adapter.yaml"
    path.write_text(yaml.safe_dump(conf, allow_unicode=True))
    pid_file, log = tmp_path / "adapter.pid", tmp_path / "adapter.log"

    def ready():
        assert read_pid(pid_file), log.read_text()[-1500:]
        try:
            return city.ops.get("/readyz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    started = []

    def start():
        start_service("provincial", path, {}, log, pid_file)
        started.append(read_pid(pid_file))
        wait_until(ready, timeout=60, what="the adapter process ready")
    start()
    try:
        province.admin("POST", "faults", {"latency_ms": 300})
        ids = {city.reported(title=f"关于第{n}个村级便民服务点的建议") for n in range(30)}
        wait_until(lambda: len(city.records()) >= 5, timeout=60, what="a few sent")
        os.kill(read_pid(pid_file), signal.SIGKILL)
        wait_until(lambda: not read_pid(pid_file), timeout=10, what="the adapter gone")
        arrived = len(city.records())
        assert arrived < 30, "the batch finished before the kill; nothing was tested"
        start()
        records = wait_until(lambda: (lambda r: r if len(r) >= 30 else None)(city.records()),
                             timeout=120, what="every item after the restart")
        assert sorted(r["local_id"] for r in records) == sorted(ids)
        assert province.admin("GET", "stats").get("same_item_twice", 0) == 0
        wait_until(lambda: city.ops.get("/api/v1/deliveries?state=acknowledged&kind=opinion").json()[
            "count"] == 30, timeout=60, what="every delivery acknowledged")
    finally:
        for pid in started:
            stop_pid(pid)


def test_a_proposal_forwarded_to_the_province_arrives_once_and_its_progress_comes_back(city):
    member = Client(city.proposals_conf, f"member:{city.author}", org=CITY)
    reviewer = Client(city.proposals_conf, "reviewer", org=CITY)
    resp = member.post("/api/v1/proposals", json={
        "kind": "member", "type": "interim", "title": "关于太行山旅游公路跨市统筹建设的建议",
        "situation": "公路跨长治、晋城两市。", "analysis": "超出市级职权。",
        "suggestions": "建议省级统筹规划。", "category": "economy"})
    assert resp.status_code == 201, resp.text
    pid = resp.json()["id"]
    for client, action, body in (
            (member, "submit", {}), (reviewer, "classify", {}),
            (reviewer, "propose", {"decision": "forward", "reason": "跨市事项，须省级统筹"}),
            (reviewer, "decide", {})):
        resp = client.post(f"/api/v1/proposals/{pid}/actions/{action}", json=body)
        assert resp.status_code == 200, (action, resp.text)
    [record] = wait_until(lambda: city.province.admin("GET", "records?kind=proposals")[
        "items"] or None, timeout=60, what="the proposal at the province")
    body = record["body"]
    assert (record["local_id"], body["category"], body["path"]) == (pid, "01", [CITY, PROVINCE])
    assert body["proposer"]["name"] and "【建议】建议省级统筹规划。" in body["content"]
    assert body["reason"] == "跨市事项，须省级统筹"
    city.province.admin("POST", f"records/{record['id']}/progress",
                        {"state": "registered", "text": "省政协提案委已立案"})
    office = Client(city.proposals_conf, "admin", org=CITY)

    def progressed():
        p = office.get(f"/api/v1/proposals/{pid}").json()
        return p if (p.get("upstream") or {}).get("by") == "province" else None
    shown = wait_until(progressed, timeout=60, what="the province's progress on the proposal")
    assert shown["upstream"]["state_label"] == "省政协已立案"
    assert shown["upstream"]["text"] == "省政协提案委已立案"


def test_a_provincial_task_comes_down_and_its_acceptance_and_report_go_up_once(city):
    task = city.province.admin("POST", "tasks", {
        "kind": "research", "title": "开展农村养老服务体系建设联合调研",
        "content": "请于年底前报送调研报告。", "due_on": "2026-12-31", "targets": [CITY]})

    def received():
        items = city.office.get("/api/v1/tasks?direction=received").json()["items"]
        return [t for t in items if t["id"] == task["id"]] or None
    [copy] = wait_until(received, timeout=60, what="the province's task at the city")
    assert copy["state"] == "received" and copy["source"]["org"] == PROVINCE
    assert copy["source"]["via"] == "province" and copy["kind"] == "research"
    assert copy["title"] == "开展农村养老服务体系建设联合调研"
    for action, body in (("accept", {}), ("report", {"summary": "已完成调研，报告见附件。",
                                                     "completed_on": "2026-11-20"})):
        resp = city.office.post(f"/api/v1/tasks/{task['id']}/actions/{action}", json=body)
        assert resp.status_code == 200, (action, resp.text)

    def reports():
        [t] = [t for t in city.province.admin("GET", "tasks")["items"] if t["id"] == task["id"]]
        return t["reports"] if len(t["reports"]) == 2 else None
    steps = {r["state"]: r for r in wait_until(reports, timeout=60,
                                                what="both steps at the province")}
    accepted, reported = steps["accepted"], steps["reported"]   # sent independently
    assert accepted["org"] == CITY
    assert reported["summary"] == "已完成调研，报告见附件。" and reported["on_time"] is True
    # the province answered before the adapter stored its answer: wait for that write
    delivery = wait_until(lambda: (lambda d: d if d["state"] != "sending" else None)(
        city.ops.get(f"/api/v1/deliveries/task_report:{task['id']}:reported").json()),
        timeout=30, what="the adapter to store the province's answer")
    assert delivery["state"] == "acknowledged" and delivery["attempts"] == 1
    # the office cannot pass a task on that it never received
    resp = city.office.post("/api/v1/tasks", json={
        "kind": "research", "title": "转发", "content": "c", "due_on": "2026-12-31",
        "parent_task": "140000-PT9999"})
    assert resp.status_code == 422 and "parent_task" in resp.json()["errors"]


def test_the_yearly_figures_reach_the_province_mapped_and_again_only_when_they_change(city):
    year = int(city.ops.get("/api/v1/province/health").headers["Date"][12:16])
    first = city.ops.post(f"/api/v1/province/figures?year={year}")
    assert first.status_code == 200 and first.json()["changed"] == [CITY], first.text

    def stored(revision):
        items = [f for f in city.province.admin("GET", "figures")["items"]
                 if (f["org"], f["year"]) == (CITY, year)]
        return items[0] if items and items[0]["revision"] == revision else None
    figures = wait_until(lambda: stored(1), timeout=60, what="the figures at the province")
    body = figures["body"]
    assert body["roster"]["active"] == 3 and sum(body["roster"]["by_sector"].values()) == 3
    assert all(code.startswith("S") for code in body["roster"]["by_sector"])
    assert body["people"]["persons"] == 3 and body["level"] == "city"
    assert body["opinions"]["collected"] == 0 and "registered" in body["proposals"]
    # nothing changed: nothing sent; one more 社情民意 item: the figures again
    assert city.ops.post(f"/api/v1/province/figures?year={year}").json()["changed"] == []
    city.reported(title="关于城区停车难的建议")
    assert city.ops.post(f"/api/v1/province/figures?year={year}").json()["changed"] == [CITY]
    figures = wait_until(lambda: stored(2), timeout=60, what="the new revision")
    assert figures["body"]["opinions"]["collected"] == 1
    assert figures["body"]["opinions"]["reported"]["province"] == 1
    resp = city.ops.post("/api/v1/province/figures?year=1999")
    assert resp.status_code == 422 and "year" in resp.json()["errors"]
