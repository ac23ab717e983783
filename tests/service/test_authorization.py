"""The authorization matrix (tests/authz.py) against the four services running
on a real broker and Mongo wire server: every route, every role.

One platform with two members, two stations, a unit, a proposal, a
社情民意 item, a citizen request, a consultation and a meeting; each route
is called by each role with the path filled from them, and the answer is
classed as the table does (``ok``: the role got past authorization, i.e. any
answer but 401, 403 and 404). ``ZHZX_AUTHZ_RECORD=1`` prints the observed
table instead of comparing, for a reviewed update of tests/authz.py.
"""
import json
import os
from datetime import date, timedelta

import pytest
import requests

from deploy.demo_data import members as demo
from services.common.openapi import routes
from services.openapi import service_classes
from tests import authz
from deploy.local import free_port
from tests.support import ROOT, Client, wait_until, with_port

pytestmark = pytest.mark.service


def routes_in_code():
    return {f"{cls.name} {method} {path}" for cls in service_classes()
            for method, path in routes(cls)}


def test_every_route_is_in_the_table():
    missing = sorted(routes_in_code() - set(authz.TABLE))
    stale = sorted(set(authz.TABLE) - routes_in_code())
    assert not missing, "routes the authorization table does not list: " + ", ".join(missing)
    assert not stale, "table rows for routes that no longer exist: " + ", ".join(stale)
    for route, row in authz.TABLE.items():
        cells = row.split()
        assert len(cells) == len(authz.ROLES) and set(cells) <= authz.OUTCOMES, route


class Network:
    """The four services of one county and the objects the routes name."""

    def __init__(self, run_service, config):
        from services.liaison.service import LiaisonService
        from services.members.service import MembersService
        from services.notify.service import NotifyService
        from services.proposals.service import ProposalsService
        from services.provincial.service import ProvincialService
        # as in Kubernetes: /metrics on a port of its own, none on the API's
        self.conf = {name: dict(with_port(config), METRICS_ADDRESS=f"127.0.0.1:{free_port()}")
                     for name in ("members", "proposals", "liaison", "notify", "provincial")}
        for cls in (MembersService, ProposalsService, LiaisonService, NotifyService,
                    ProvincialService):
            run_service(cls, self.conf[cls.name])
        admin = {name: Client(conf, "admin") for name, conf in self.conf.items()}
        resp = admin["members"].post("/api/v1/members/import",
                                     data=demo.roster_csv(demo.members(6)),
                                     headers={"Content-Type": "text/csv"})
        assert resp.status_code == 200 and resp.json()["created"] == 6, resp.text
        listed = admin["members"].get("/api/v1/members?limit=10").json()["items"]
        m1, m2, m3, m4 = sorted(m["id"] for m in listed)[:4]
        person = next(m["person_id"] for m in listed if m["id"] == m1)
        for uid in ("jyj", "wjj"):
            resp = admin["proposals"].post("/api/v1/units", json={
                "id": uid, "name": f"县{uid}局", "kind": "government",
                "contacts": [{"name": "办公室", "phone": "13800138000"}]})
            assert resp.status_code == 201, resp.text
        # a proposal of m1, registered and assigned to jyj
        own = Client(self.conf["proposals"], f"member:{m1}")
        reviewer = Client(self.conf["proposals"], "reviewer")
        resp = own.post("/api/v1/proposals", json={
            "kind": "member", "type": "interim", "title": "关于加强农村学校教师队伍建设的建议",
            "situation": "教师流失。", "analysis": "待遇偏低。", "suggestions": "提高补贴。",
            "category": "livelihood"})
        assert resp.status_code == 201, resp.text
        proposal = resp.json()["id"]
        for client, action, body in ((own, "submit", {}), (reviewer, "classify", {}),
                                     (reviewer, "propose", {"decision": "register"}),
                                     (reviewer, "decide", {}),
                                     (admin["proposals"], "assign", {"lead_unit": "jyj"})):
            resp = client.post(f"/api/v1/proposals/{proposal}/actions/{action}", json=body)
            assert resp.status_code == 200, (action, resp.text)
        # stations: room1 with m1 and m3, room2 with m2 and m4
        for sid, members, place in (("room1", [m1, m3], "140428100201"),
                                    ("room2", [m2, m4], "140428100202")):
            resp = admin["liaison"].post("/api/v1/stations", json={
                "id": sid, "name": f"{sid}议事室", "kind": "room", "place_code": place,
                "members": members})
            assert resp.status_code == 201, resp.text
        resp = Client(self.conf["liaison"], f"member:{m1}").post("/api/v1/opinions", json={
            "title": "关于村道安装路灯的建议", "content": "村道夜间无照明，群众出行不便。",
            "author_member": m1, "station_id": "room1"})
        assert resp.status_code == 201, resp.text
        opinion = resp.json()["id"]
        resp = Client(self.conf["liaison"], "citizen", sub="citizen-1").post(
            "/api/v1/requests", json={"station_id": "room1", "category": "wish",
                                      "title": "修缮村口便民座椅", "description": "座椅损坏。",
                                      "contact": "张大娘 13800138000"})
        assert resp.status_code == 201, resp.text
        request = resp.json()["id"]
        resp = Client(self.conf["liaison"], "station:room1").post(
            f"/api/v1/requests/{request}/actions/dispatch", json={"member_id": m1})
        assert resp.status_code == 200, resp.text
        resp = admin["liaison"].post("/api/v1/consultations", json={
            "title": "村集体经济发展", "source": "members", "station_id": "room1",
            "members": [m1, m3]})
        assert resp.status_code == 201, resp.text
        consultation = resp.json()["id"]
        start = (date.today() + timedelta(days=10)).isoformat()
        resp = admin["members"].post("/api/v1/meetings", json={
            "kind": "standing", "title": "常委会议", "starts_at": f"{start}T09:00",
            "ends_on": start, "place": "县政协会议室", "invite": {"members": [m1, m3]}})
        assert resp.status_code == 201, resp.text
        meeting = resp.json()["id"]
        mine = Client(self.conf["notify"], f"member:{m1}")
        note = wait_until(lambda: (mine.get("/api/v1/inbox").json().get("items") or [None])[0],
                          timeout=60, what="a notification for the member")["id"]
        delivery = wait_until(lambda: (admin["notify"].get("/api/v1/deliveries").json().get(
            "items") or [None])[0], timeout=60, what="a delivery")["id"]
        self.roles = {
            "admin": (["admin"], "140428"), "reviewer": (["reviewer"], "140428"),
            "unit": (["unit:jyj"], "140428"), "member_own": ([f"member:{m1}"], "140428"),
            "member_other": ([f"member:{m2}"], "140428"),
            "station_own": (["station:room1"], "140428"),
            "station_other": (["station:room2"], "140428"),
            "leader": (["leader:l1"], "140428"), "citizen": (["citizen"], "140428"),
            "foreign": (["admin"], "140426"), "anonymous": (None, None)}
        self.docs = {}
        self.params = {
            "member_id": m1, "spare_member": m3, "person_id": person, "unit_id": "jyj",
            "proposal_id": proposal, "station_id": "room1", "opinion_id": opinion,
            "request_id": request, "consultation_id": consultation, "task_id": "t-none",
            "meeting_id": meeting, "note_id": note, "delivery_id": delivery,
            "recipient": f"member:{m1}", "name": "swagger-ui.css"}

    def body(self, service, method, path):
        doc = self.docs.setdefault(service, json.loads(
            (ROOT / "docs" / "openapi" / f"{service}.json").read_text()))
        op = doc["paths"][path][method.lower()]
        schema = (op.get("requestBody") or {}).get("content", {}).get(
            "application/json", {}).get("schema")
        return authz.example(schema, doc["components"]["schemas"]) if schema else {}

    def call(self, route, role):
        service, method, path = route.split(" ", 2)
        params = dict(self.params, **authz.PARAMS.get(route, {}))
        params = {k: self.params.get(v, v) for k, v in params.items()}
        roles, org = self.roles[role]
        client = Client(self.conf[service], *(roles or ()), org=org or "140428",
                        sub=f"authz-{role}")
        kwargs = {} if method in ("GET", "DELETE") else {"json": self.body(service, method, path)}
        resp = client.request(method, path.format(**params), **kwargs)
        return authz.outcome(resp.status_code)


def test_every_role_gets_what_the_table_says_on_every_route(run_service, config):
    network = Network(run_service, config)
    observed = {}
    recording = bool(os.environ.get("ZHZX_AUTHZ_RECORD"))
    for route in authz.run_order(routes_in_code() if recording else authz.TABLE):
        cells = {role: network.call(route, role) for role in authz.call_order()}
        observed[route] = " ".join(cells[r] for r in authz.ROLES)
    for conf in network.conf.values():
        scraped = requests.get(f"http://{conf['METRICS_ADDRESS']}/metrics", timeout=10)
        assert scraped.status_code == 200 and "zhzx_entrypoint_calls_total" in scraped.text
    if recording:
        print(authz.render(observed))
        return
    wrong = [f"{route}\n    table:    {authz.TABLE[route]}\n    observed: {observed[route]}"
             for route in authz.TABLE if observed[route] != authz.TABLE[route]]
    assert not wrong, f"columns: {' '.join(authz.ROLES)}\n" + "\n".join(wrong)
