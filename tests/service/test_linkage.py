"""三级联动 between a county and its city: two RabbitMQ nodes on 127.0.0.1 linked
by federation (set up by ``zhzx link``'s code), two Mongo wire servers, and the
services of each platform running against their own."""
import tempfile
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from kombu import Connection, Exchange, Producer

from deploy.local import Broker, MongoWire, free_port
from services.common import federation
from services.common import dlq
from services.common.envelope import make_event
from services.common.signing import Signer, new_private_key, public_key, write_trust
from services.liaison.service import LiaisonService
from deploy.demo_data import members as demo
from services.members.service import MembersService
from services.proposals.service import ProposalsService
from tests import support
from tests.service.test_members_api import valid_member
from tests.support import Client, wait_until, with_port

pytestmark = pytest.mark.service

COUNTY, CITY, OTHER = "140428", "140400", "140426"


class Side(support.Infra):
    """One platform's own broker node and Mongo wire server."""

    def __init__(self, base, org, cluster):
        self.org = org
        super().__init__(
            Broker(base / f"rabbit-{org}", node=f"zhzx-link-{org}-{free_port()}@localhost",
                   amqp_port=free_port(), mgmt_port=free_port(), prom_port=free_port(),
                   dist_port=free_port(), cluster_name=cluster),
            MongoWire(base / f"mongo-{org}", free_port()), base)

    def ref(self):
        return federation.BrokerRef(self.broker.mgmt_url, "127.0.0.1", self.broker.amqp_port,
                                    self.broker.admin)


@pytest.fixture(scope="module")
def pair():
    base = Path(tempfile.mkdtemp(prefix="zhzx-link-"))
    county, city = Side(base, COUNTY, "zhzx-t-140428"), Side(base, CITY, "zhzx-t-140400")
    started = []
    try:
        for part in (county.broker, city.broker, county.mongo, city.mongo):
            part.start()
            started.append(part)
        federation.link(county.ref(), city.ref(), county_org=COUNTY, city_org=CITY)
        wait_until(lambda: all(s["state"] == "running"
                               for s in federation.status(county.ref(), city.ref())),
                   timeout=60, what="both federation links running")
        yield county, city
    finally:
        for part in reversed(started):
            part.stop()


@pytest.fixture
def platforms(pair, run_service):
    county, city = pair
    prefix = f"t{free_port()}_"
    county_conf = support.service_config(county, prefix=prefix)
    city_conf = dict(support.service_config(city, prefix=prefix), ORG_CODE=CITY,
                     ORG_NAME="长治市", ORG_LEVEL="city", PARENT_ORG="140000",
                     CHILD_ORGS=f"{OTHER}=黎城县,{COUNTY}=长子县")
    support.trust_each_other(county_conf, city_conf)
    # another county of the city, linked too: its key is registered, not held here
    write_trust(city_conf["LINK_TRUST_FILE"], OTHER, [public_key(new_private_key())])
    members_conf = with_port(county_conf)
    run_service(MembersService, members_conf)
    run_service(LiaisonService, county_conf)
    run_service(LiaisonService, city_conf)
    admin = Client(members_conf, "admin")
    resp = admin.post("/api/v1/members/import", headers={"Content-Type": "text/csv"},
                      data=demo.roster_csv(demo.members(3)))
    assert resp.status_code == 200, resp.text
    ids = sorted(m["id"] for m in admin.get("/api/v1/members?limit=5").json()["items"])
    return county_conf, city_conf, admin, ids


def act(client, oid, action, **data):
    resp = client.post(f"/api/v1/opinions/{oid}/actions/{action}", json=data)
    assert resp.status_code == 200, (action, resp.text)
    return resp.json()


def submitted(author, title):
    """A 社情民意 item submitted by ``author``. Submitting looks the author up
    in the members service over RPC; a 503 (it did not answer in time, e.g.
    while its broker connection recovers) is retried as a client would."""
    def attempt():
        resp = author.post("/api/v1/opinions", json={"title": title, "content": "建议……"})
        assert resp.status_code in (201, 503), resp.text
        return resp.json()["id"] if resp.status_code == 201 else None
    return wait_until(attempt, timeout=60, what="the item accepted")


def reported_up(county_conf, member, title):
    author = Client(county_conf, f"member:{member}")
    oid = submitted(author, title)
    office = Client(county_conf, "admin")
    for action, data in (("accept", {}), ("issue", {}), ("report", {"level": "city"})):
        act(office, oid, action, **data)
    return oid


def city_item(city_conf, oid):
    resp = Client(city_conf, "admin", org=CITY).get(f"/api/v1/opinions/{COUNTY}-{oid}")
    return resp.json() if resp.status_code == 200 else None


def test_opinion_reported_up_arrives_at_the_city_and_its_adoption_credits_the_county_author(
        platforms):
    county_conf, city_conf, members_admin, (a, *_) = platforms
    oid = reported_up(county_conf, a, "关于农村留守老人助餐的建议")
    item = wait_until(lambda: city_item(city_conf, oid), timeout=60, what="the city's intake")
    assert item["state"] == "submitted" and item["source"]["org"] == COUNTY
    assert item["source"]["author_member"] == a and item["content"] == "建议……"
    assert item["source"]["author_name"]

    city = Client(city_conf, "admin", org=CITY)
    cid = item["id"]
    act(city, cid, "accept")
    act(city, cid, "edit", content="建议在中心村建设老年助餐点。")
    act(city, cid, "issue")
    act(city, cid, "adopt", level="city")
    up = act(city, cid, "report", level="province")
    assert up["reported"]["province"]["target_org"] == "140000"  # for the provincial adapter

    county = Client(county_conf, "admin")
    original = wait_until(lambda: (lambda o: o if "province" in o["reported"] and "city" in
                                   o["adopted"] else None)(
        county.get(f"/api/v1/opinions/{oid}").json()), timeout=60, what="feedback down")
    assert original["reported"]["city"]["target_org"] == CITY
    # credited in the county author's 履职档案: submitted 1 + issued 2 + city adoption 5
    year = int(original["year"])
    wait_until(lambda: members_admin.get(f"/api/v1/records/{a}?year={year}").json()
               .get("points") == 8, timeout=30, what="the author's record")


def test_with_the_city_broker_down_both_sides_work_and_everything_arrives_once(
        pair, platforms):
    county_side, city_side = pair
    county_conf, city_conf, _, (a, b, *_) = platforms
    first = reported_up(county_conf, a, "关于县城停车难的建议")
    wait_until(lambda: city_item(city_conf, first), timeout=60, what="first item")

    city_side.broker.stop_app()
    try:
        second = reported_up(county_conf, b, "关于农村客运班次的建议")  # county keeps working
        third = reported_up(county_conf, a, "关于秸秆综合利用的建议")
        # `zhzx link status`: the city does not answer, the county buffers both,
        # and the age of the oldest buffered event is the link's lag
        up = wait_until(lambda: (lambda row: row if (row["buffered"] or 0) >= 2 and
                                 row["oldest_seconds"] is not None else None)(
            federation.status(county_side.ref(), city_side.ref())[0]), timeout=60,
            what="the buffered events in link status")
        assert up["link"] == "up" and up["state"] == "unreachable" and up["buffered"] >= 2
        assert 0 <= up["oldest_seconds"] < 600
    finally:
        city_side.broker.start_app()
    wait_until(lambda: all(s["state"] == "running" for s in
                           federation.status(county_side.ref(), city_side.ref())),
               timeout=90, what="links back")
    for oid in (second, third):
        wait_until(lambda: city_item(city_conf, oid), timeout=90, what=f"{oid} after outage")
    listed = Client(city_conf, "admin", org=CITY).get("/api/v1/opinions?limit=50").json()["items"]
    ids = [o["id"] for o in listed]
    assert sorted(ids) == sorted(f"{COUNTY}-{o}" for o in (first, second, third))

    # the county broker down: its services keep writing (the report is stored
    # with its linked event in the outbox); the relay catches up afterwards
    office = Client(county_conf, "admin")
    fourth = submitted(Client(county_conf, f"member:{b}"), "关于防汛的建议")
    act(office, fourth, "accept")
    act(office, fourth, "issue")
    county_side.broker.stop_app()
    try:
        act(office, fourth, "report", level="city")
    finally:
        county_side.broker.start_app()
    wait_until(lambda: city_item(city_conf, fourth), timeout=120, what="item written while down")
    listed = Client(city_conf, "admin", org=CITY).get("/api/v1/opinions?limit=50").json()["items"]
    assert len(listed) == 4 and len({o["id"] for o in listed}) == 4


def publish_linked(side, exchange, to, event, signer=None, headers=None):
    """Publish ``event`` to ``side``'s link exchange as a platform's relay
    would: signed with the key in the ``signer`` config, if one is given."""
    ex = Exchange(exchange, type="topic", durable=True)
    headers = dict(headers or {})
    if signer is not None:
        headers.update(Signer(signer["LINK_SIGNING_KEY"]).headers(to, event))
    with Connection(side.amqp_uri) as conn:
        Producer(conn.channel()).publish(event, exchange=ex, routing_key=f"{to}.{event['type']}",
                                         serializer="json", declare=[ex], headers=headers)


def refusals(side, reason):
    return [d for d in dlq.list_dead_letters(side.amqp_uri)
            if str(d["error"]).startswith(f"refused ({reason})")]


def test_a_linked_event_that_cannot_prove_its_origin_or_its_right_is_refused_with_the_reason(
        pair, platforms):
    """A rogue process on the county's broker claims another county's origin;
    an old event is replayed; the city acts on an item never sent up; an event
    comes unsigned. Nothing is applied and each dead letter names its cause,
    which `zhzx link status` counts."""
    county_side, city_side = pair
    county_conf, city_conf, _, (a, *_) = platforms

    def forwarded(origin, title, **extra):
        return dict(make_event("opinion.forwarded", origin=origin, aggregate_id="r1", seq=1,
                               payload={"opinion_id": f"R{free_port()}", "title": title,
                                        "content": "伪造", "category": None, "year": 2026}),
                    **extra)

    rogue = forwarded(OTHER, "冒充黎城县")        # signed with the county's own key
    old = forwarded(COUNTY, "重放的旧事件", occurred_at=(
        date.today() - timedelta(days=45)).isoformat() + "T08:00:00+00:00")
    unsigned = forwarded(COUNTY, "未签名")
    publish_linked(county_side, "zhzx.up", CITY, rogue, signer=county_conf)
    publish_linked(county_side, "zhzx.up", CITY, old, signer=county_conf)
    publish_linked(county_side, "zhzx.up", CITY, unsigned)
    # the city acts on an item of the county's that was never reported up
    author = Client(county_conf, f"member:{a}")
    kept = submitted(author, "只在县里的社情民意")
    before = Client(county_conf, "admin").get(f"/api/v1/opinions/{kept}").json()
    action = make_event("opinion.feedback", origin=CITY, aggregate_id=f"{COUNTY}-{kept}", seq=1,
                        payload={"opinion_id": kept, "action": "instruct", "level": "city",
                                 "leader": "市长", "title": "t", "year": 2026})
    publish_linked(city_side, "zhzx.down", COUNTY, action, signer=city_conf)

    for side, reason, event in ((city_side, "unknown_key", rogue), (city_side, "stale", old),
                                (city_side, "unsigned", unsigned),
                                (county_side, "not_sent", action)):
        found = wait_until(lambda: [d for d in refusals(side, reason)
                                    if d["event_id"] == event["event_id"]],
                           timeout=60, what=f"{reason} dead letter")
        assert found[0]["type"] == event["type"] and found[0]["attempts"] == 0
    city = Client(city_conf, "admin", org=CITY).get("/api/v1/opinions?limit=100").json()["items"]
    assert not [o for o in city if o["title"] in ("冒充黎城县", "重放的旧事件", "未签名")]
    after = Client(county_conf, "admin").get(f"/api/v1/opinions/{kept}").json()
    assert after["instructions"] == before["instructions"] == []
    assert after["seq"] == before["seq"]
    rows = {r["link"]: r for r in federation.status(county_side.ref(), city_side.ref())}
    assert {"unknown_key", "stale", "unsigned"} <= set(rows["up"]["refused"])
    assert rows["down"]["refused"].get("not_sent", 0) >= 1


def test_an_event_addressed_to_another_county_is_not_delivered_here(pair, platforms):
    county_side, city_side = pair
    county_conf, city_conf, _, (a, *_) = platforms
    oid = reported_up(county_conf, a, "关于校园安全的建议")
    wait_until(lambda: city_item(city_conf, oid), timeout=60, what="intake")

    def feedback(to, action, **extra):
        event = make_event("opinion.feedback", origin=CITY, aggregate_id=f"{COUNTY}-{oid}",
                           seq=1, payload=dict({"opinion_id": oid, "action": action,
                                                "title": "t", "year": 2026}, **extra))
        publish_linked(city_side, "zhzx.down", to, event, signer=city_conf)

    feedback("140429", "adopt", level="city")       # another county's
    feedback(COUNTY, "instruct", level="city", leader="市长")
    county = Client(county_conf, "admin")
    done = wait_until(lambda: (lambda o: o if o["instructions"] else None)(
        county.get(f"/api/v1/opinions/{oid}").json()), timeout=60, what="instruction")
    assert done["adopted"] == {} and done["instructions"][0]["leader"] == "市长"



def test_a_county_service_killed_mid_forward_and_a_closed_federation_connection_lose_nothing(
        pair, platforms, run_service):
    county_side, city_side = pair
    county_conf, city_conf, _, (a, b, *_) = platforms
    # kill the county's liaison right after the report is stored: the linked
    # event is in its outbox and goes out when the service is back
    office = Client(county_conf, "admin")
    oid = submitted(Client(county_conf, f"member:{a}"), "关于老旧小区改造的建议")
    act(office, oid, "accept")
    act(office, oid, "issue")
    liaison = next(c for c in run_service.started if c.service_name == "liaison"
                   and c.config["ORG_CODE"] == COUNTY)
    liaison.kill()
    restarted = with_port(county_conf)
    run_service(LiaisonService, restarted)
    act(Client(restarted, "admin"), oid, "report", level="city")
    run_service.started[-1].kill()
    current = with_port(county_conf)
    run_service(LiaisonService, current)
    wait_until(lambda: city_item(city_conf, oid), timeout=60, what="item after the restart")

    # close the federation connections: the links reconnect and deliver
    auth = ("guest", "guest")

    def link_connections():  # the management API lists connections a few seconds late
        return [c["name"] for c in requests.get(f"{county_side.broker.mgmt_url}/api/connections",
                                                auth=auth, timeout=10).json()
                if c.get("user") == f"link-{CITY}"]
    federation_conns = wait_until(link_connections, timeout=30, what="the link's connection")
    for name in federation_conns:
        requests.delete(f"{county_side.broker.mgmt_url}/api/connections/{quote(name, safe='')}",
                        auth=auth, timeout=10)
    later = reported_up(current, b, "关于公交站台的建议")
    wait_until(lambda: city_item(city_conf, later), timeout=90, what="item after reconnect")
    listed = Client(city_conf, "admin", org=CITY).get("/api/v1/opinions?limit=50").json()["items"]
    assert sorted(o["id"] for o in listed) == sorted(f"{COUNTY}-{x}" for x in (oid, later))


def link_ids(county_side, city_side):
    """Each federation link's id and start time: a restarted link changes both."""
    return sorted((l["exchange"], l["id"], l["timestamp"])
                  for side in (county_side, city_side)
                  for l in side.ref().call("GET", "federation-links/%2F") or [])


def test_relinking_during_a_stream_and_a_stopped_city_broker_lose_nothing(pair, platforms):
    """`zhzx link` re-run while items stream up changes nothing (no password
    rotation, no link restart), and the county's federation queue survives
    the city broker's shutdown, buffering what the county reports meanwhile."""
    county_side, city_side = pair
    county_conf, city_conf, _, (a, b, *_) = platforms
    before = link_ids(county_side, city_side)
    sent = []
    for i in range(12):
        sent.append(reported_up(county_conf, (a, b)[i % 2], f"关于第{i + 1}个村道修缮的建议"))
        if i % 2 == 0:   # re-linked six times during the stream
            federation.link(county_side.ref(), city_side.ref(), county_org=COUNTY,
                            city_org=CITY)
    assert link_ids(county_side, city_side) == before   # nothing restarted

    city_side.broker.stop()    # a clean shutdown, as SIGTERM does
    try:
        for i in range(3):
            sent.append(reported_up(county_conf, a, f"关于第{i + 1}处积水点的建议"))
        queue = "federation: zhzx.up -> zhzx-t-140400"   # named after the city's cluster
        up = wait_until(lambda: (lambda row: row if (row["buffered"] or 0) >= 3 else None)(
            federation.status(county_side.ref(), city_side.ref())[0]), timeout=60,
            what="the county buffering in its federation queue")
        assert up["state"] == "unreachable"
        names = [q["name"] for q in county_side.ref().call("GET", "queues/%2F")]
        assert queue in names
    finally:
        city_side.broker.start()
    for oid in sent:
        wait_until(lambda: city_item(city_conf, oid), timeout=120, what=f"{oid} at the city")
    listed = Client(city_conf, "admin", org=CITY).get("/api/v1/opinions?limit=100").json()
    assert sorted(o["id"] for o in listed["items"]) == sorted(f"{COUNTY}-{o}" for o in sent)


# --- proposals, tasks and roll-ups across the pair ---------------------------------
class Network:
    """Members, proposals and liaison of the county and of the city."""

    def __init__(self, pair, run_service):
        county, city = pair
        prefix = f"n{free_port()}_"
        fast = {"ROLLUP_SECONDS": 0.5}
        self.county = dict(support.service_config(county, prefix=prefix), **fast)
        self.city = dict(support.service_config(city, prefix=prefix), ORG_CODE=CITY,
                         ORG_NAME="长治市", ORG_LEVEL="city", PARENT_ORG="140000",
                         CHILD_ORGS=f"140426=黎城县,{COUNTY}=长子县", **fast)  # the unlinked one first
        support.trust_each_other(self.county, self.city)
        self.conf = {}
        for side, base in (("county", self.county), ("city", self.city)):
            for cls in (MembersService, ProposalsService, LiaisonService):
                conf = with_port(base)
                run_service(cls, conf)
                self.conf[side, cls.name] = conf

    def client(self, side, service, *roles):
        return Client(self.conf[side, service], *roles, org=COUNTY if side == "county" else CITY)

    def get(self, side, service, path):
        resp = self.client(side, service, "admin").get(path)
        return resp.json() if resp.status_code == 200 else None


@pytest.fixture
def network(pair, run_service):
    return Network(pair, run_service)


def appoint(net, side, name, id_number, **over):
    resp = net.client(side, "members", "admin").post("/api/v1/members", json=valid_member(
        name=name, id_number=id_number, **over))
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def proposal_act(client, pid, action, **data):
    resp = client.post(f"/api/v1/proposals/{pid}/actions/{action}", json=data)
    assert resp.status_code == 200, (action, resp.status_code, resp.text)
    return resp.json()


def forwarded_proposal(net, lead):
    member = net.client("county", "proposals", f"member:{lead}")
    resp = member.post("/api/v1/proposals", json={
        "kind": "member", "type": "interim", "title": "关于长子至长治城际公交的建议",
        "situation": "县城至市区公交班次少。", "analysis": "线路跨县区，县里无权调整。",
        "suggestions": "由市交通局统筹开通城际公交。", "category": "livelihood"})
    assert resp.status_code == 201, resp.text
    pid = resp.json()["id"]
    reviewer = net.client("county", "proposals", "reviewer")
    proposal_act(member, pid, "submit")
    proposal_act(reviewer, pid, "classify")
    proposal_act(reviewer, pid, "propose", decision="forward", reason="涉及跨县区公交线路，超出县级职权")
    return pid, proposal_act(reviewer, pid, "decide")


def upstream_state(net, pid, state):
    doc = net.get("county", "proposals", f"/api/v1/proposals/{pid}")
    return doc if doc and (doc.get("upstream") or {}).get("state") == state else None


def test_a_proposal_beyond_county_remit_goes_to_the_city_and_its_progress_shows_on_the_original(
        network):
    net = network
    lead = appoint(net, "county", "王建国", "140428199003071235")
    pid, original = forwarded_proposal(net, lead)
    assert original["state"] == "forwarded"
    city_id = original["forwarded"]["proposal_id"]
    assert original["forwarded"]["to"] == CITY and city_id == f"{CITY}-{pid}"

    copy = wait_until(lambda: net.get("city", "proposals", f"/api/v1/proposals/{city_id}"),
                      timeout=60, what="the forwarded proposal at the city")
    assert copy["kind"] == "linked" and copy["state"] == "submitted"
    assert copy["source"]["org"] == COUNTY and copy["source"]["proposal_id"] == pid
    assert copy["source"]["proposer"] == "王建国"
    assert copy["title"] == "关于长子至长治城际公交的建议"

    city = net.client("city", "proposals", "admin")
    resp = city.post("/api/v1/units", json={"id": "sjtj", "name": "市交通运输局",
                                            "kind": "government", "topics": ["交通"]})
    assert resp.status_code == 201, resp.text
    proposal_act(city, city_id, "classify")
    proposal_act(city, city_id, "propose", decision="register")
    number = proposal_act(city, city_id, "decide")["number"]
    proposal_act(city, city_id, "assign", lead_unit="sjtj")
    shown = wait_until(lambda: upstream_state(net, pid, "assigned"), timeout=60,
                       what="assignment shown on the original")
    assert shown["upstream"]["number"] == number
    assert shown["upstream"]["lead_unit"] == "市交通运输局"
    assert shown["state"] == "forwarded"

    unit = net.client("city", "proposals", "unit:sjtj")
    proposal_act(unit, city_id, "start")
    proposal_act(unit, city_id, "answer", category="B", text="已列入明年城际公交计划。")
    # an answer under the city's review is not shown yet
    proposal_act(city, city_id, "release")
    shown = wait_until(lambda: upstream_state(net, pid, "awaiting_evaluation"), timeout=60,
                       what="the released answer on the original")
    assert shown["upstream"]["answer"]["category"] == "B"
    assert shown["upstream"]["answer"]["text"] == "已列入明年城际公交计划。"
    proposal_act(city, city_id, "evaluate", rating="satisfied")
    proposal_act(city, city_id, "close")
    closed = wait_until(lambda: upstream_state(net, pid, "closed"), timeout=60, what="closed")
    assert closed["upstream"]["evaluation"] == "satisfied"
    assert [h["action"] for h in closed["history"]][-1] == "decide"  # the county's own steps

    # a county cannot forward without a parent; the city's statistics count it as linked
    stats = net.get("city", "proposals", "/api/v1/proposals/statistics")
    assert stats["by_kind"]["linked"]["count"] == 1


def test_a_city_task_reaches_the_county_with_its_due_date_and_the_report_comes_back(network):
    net = network
    city = net.client("city", "liaison", "admin")
    due = (date.today() + timedelta(days=20)).isoformat()
    bad = city.post("/api/v1/tasks", json={"kind": "research", "title": "t", "content": "c",
                                          "due_on": "2020-01-01", "targets": ["140999"]})
    assert bad.status_code == 422
    assert set(bad.json()["errors"]) == {"targets", "due_on"}
    resp = city.post("/api/v1/tasks", json={
        "kind": "research", "title": "关于县域医共体建设的联合调研",
        "content": "请各县政协组织委员开展调研，形成报告。", "due_on": due, "targets": [COUNTY]})
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert task["state"] == "open" and task["targets"][COUNTY]["state"] == "sent"

    received = wait_until(lambda: net.get("county", "liaison", f"/api/v1/tasks/{task['id']}"),
                          timeout=60, what="the task at the county")
    assert received["state"] == "received" and received["due_on"] == due
    assert received["kind_label"] == "联合调研" and received["source"]["org"] == CITY
    assert received["allowed_actions"] == ["accept", "report"]
    listed = net.get("county", "liaison", "/api/v1/tasks?direction=received")["items"]
    assert [t["id"] for t in listed] == [task["id"]]

    county = net.client("county", "liaison", "admin")
    resp = county.post(f"/api/v1/tasks/{task['id']}/actions/accept", json={})
    assert resp.status_code == 200, resp.text
    wait_until(lambda: net.get("city", "liaison", f"/api/v1/tasks/{task['id']}")
               ["targets"][COUNTY]["state"] == "accepted", timeout=60, what="accepted up")
    resp = county.post(f"/api/v1/tasks/{task['id']}/actions/report", json={
        "summary": "组织 12 名委员走访 8 个乡镇卫生院，形成调研报告。"})
    assert resp.status_code == 200 and resp.json()["state"] == "reported"
    done = wait_until(lambda: (lambda t: t if t["state"] == "completed" else None)(
        net.get("city", "liaison", f"/api/v1/tasks/{task['id']}")), timeout=60,
        what="the report at the city")
    target = done["targets"][COUNTY]
    assert target["state"] == "reported" and target["on_time"] is True
    assert target["summary"].startswith("组织 12 名委员")
    # a report is final
    again = county.post(f"/api/v1/tasks/{task['id']}/actions/report", json={"summary": "再报"})
    assert again.status_code == 409


def county_rollup(net):
    body = net.get("city", "members", "/api/v1/members/rollup")
    return next(p for p in body["platforms"] if p["org"] == COUNTY), body


def test_the_city_sees_each_countys_roster_and_figures_kept_current_and_one_person_once(
        network):
    net = network
    shared = "140428198501010019"   # sits on both committees
    a = appoint(net, "county", "王建国", "140428199003071235")
    b = appoint(net, "county", "李红", shared, party="cpc", sector="经济界",
                committees=["经济委"])
    appoint(net, "city", "李红", shared, party="cpc", sector="经济界", committees=["经济委"])
    appoint(net, "city", "赵强", "140428198001010012")

    wait_until(lambda: county_rollup(net)[0]["active"] == 2, timeout=60, what="roster up")
    mine, body = county_rollup(net)
    assert mine["by_sector"] == {"教育界": 1, "经济界": 1}
    assert mine["by_party"] == {"cdl": 1, "cpc": 1}
    assert mine["by_committee"] == {"提案委": 1, "教科卫体委": 1, "经济委": 1}
    assert body["people"] == {"memberships": 4, "persons": 3, "on_several_committees": 1}
    other = next(p for p in body["platforms"] if p["org"] == "140426")
    assert other["active"] == 0 and other["received"] == 0   # linked, nothing yet
    # the person's memberships at every level the city knows, each naming its org
    person = net.get("city", "members", "/api/v1/members?name=李红")["items"][0]["person_id"]
    held = net.get("city", "members", f"/api/v1/persons/{person}/memberships")["items"]
    assert sorted((m["org"], m["org_name"], m["level"]) for m in held) == [
        ("140400", "长治市", "city"), (COUNTY, "长子县", "county")]
    assert all("id_number" not in m and "phone" not in m for m in held if m["level"] == "county")

    resp = net.client("county", "members", "admin").post(
        f"/api/v1/members/{b}/end", json={"status": "resigned", "reason": "工作调动",
                                          "ended_on": date.today().isoformat()})
    assert resp.status_code == 200, resp.text
    wait_until(lambda: county_rollup(net)[0]["active"] == 1, timeout=60, what="resignation up")
    assert county_rollup(net)[1]["people"]["on_several_committees"] == 0

    # proposal and 社情民意 figures roll up when they change
    member = net.client("county", "proposals", f"member:{a}")
    pid = member.post("/api/v1/proposals", json={
        "kind": "member", "type": "interim", "title": "关于农村饮水安全的建议",
        "situation": "s", "analysis": "a", "suggestions": "g", "category": "livelihood"}).json()["id"]
    proposal_act(member, pid, "submit")
    year = date.today().year

    def county_figures(service, path):
        items = net.get("city", service, path)["items"]
        return next(i for i in items if i["org"] == COUNTY)["figures"]

    figures = wait_until(lambda: (lambda f: f if f and f["submitted"] == 1 else None)(
        county_figures("proposals", f"/api/v1/proposals/statistics/counties?year={year}")),
        timeout=60, what="proposal figures at the city")
    assert figures["in_review"] == 1
    Client(net.conf["county", "liaison"], f"member:{a}").post(
        "/api/v1/opinions", json={"title": "关于集中供暖的建议", "content": "建议……"})
    figures = wait_until(lambda: (lambda f: f if f and f["opinions"]["collected"] == 1 else None)(
        county_figures("liaison", f"/api/v1/liaison/statistics/counties?year={year}")),
        timeout=60, what="社情民意 figures at the city")
    assert figures["year"] == year


def test_with_the_county_broker_down_both_sides_act_and_every_linked_event_arrives_once(
        pair, network):
    county_side, _ = pair
    net = network
    lead = appoint(net, "county", "王建国", "140428199003071235")
    member_b = appoint(net, "county", "李红", "140428198501010019")
    first, _ = forwarded_proposal(net, lead)
    wait_until(lambda: net.get("city", "proposals", f"/api/v1/proposals/{CITY}-{first}"),
               timeout=60, what="first forward")
    city_tasks = net.client("city", "liaison", "admin")
    due = (date.today() + timedelta(days=10)).isoformat()
    early = city_tasks.post("/api/v1/tasks", json={
        "kind": "notice", "title": "关于报送年度履职情况的通知", "content": "请于月底前报送。",
        "due_on": due}).json()
    assert sorted(early["targets"]) == ["140426", COUNTY]   # every linked county
    wait_until(lambda: net.get("county", "liaison", f"/api/v1/tasks/{early['id']}"),
               timeout=60, what="first task")
    # the second proposal up to the review decision, which needs no other service
    member = net.client("county", "proposals", f"member:{lead}")
    second = member.post("/api/v1/proposals", json={
        "kind": "member", "type": "interim", "title": "关于跨县河道治理的建议", "situation": "s",
        "analysis": "a", "suggestions": "g", "category": "ecology"}).json()["id"]
    reviewer = net.client("county", "proposals", "reviewer")
    proposal_act(member, second, "submit")
    proposal_act(reviewer, second, "classify")
    proposal_act(reviewer, second, "propose", decision="forward", reason="河道跨县，需市级统筹")

    county_side.broker.stop_app()
    try:  # both platforms keep working
        assert proposal_act(reviewer, second, "decide")["state"] == "forwarded"
        report = net.client("county", "liaison", "admin").post(
            f"/api/v1/tasks/{early['id']}/actions/report", json={"summary": "已报送。"})
        assert report.status_code == 200, report.text
        ended = net.client("county", "members", "admin").post(
            f"/api/v1/members/{member_b}/end", json={"status": "removed", "reason": "撤销",
                                                     "ended_on": date.today().isoformat()})
        assert ended.status_code == 200, ended.text
        city = net.client("city", "proposals", "admin")
        proposal_act(city, f"{CITY}-{first}", "classify")
        proposal_act(city, f"{CITY}-{first}", "propose", decision="reject",
                     ground=support.service_config(county_side, "x")["PROPOSALS"]
                     ["rejection_grounds"][0])
        proposal_act(city, f"{CITY}-{first}", "decide")
        late = city_tasks.post("/api/v1/tasks", json={
            "kind": "consultation", "title": "关于优化营商环境的协商议题", "content": "请组织协商。",
            "due_on": due})
        assert late.status_code == 201, late.text
    finally:
        county_side.broker.start_app()

    late_id = late.json()["id"]
    wait_until(lambda: net.get("city", "proposals", f"/api/v1/proposals/{CITY}-{second}"),
               timeout=120, what="the forward made while down")
    rejected = wait_until(lambda: upstream_state(net, first, "rejected"), timeout=120,
                          what="the city's decision made while the county was down")
    assert rejected["upstream"]["decision"]["decision"] == "reject"
    assert rejected["upstream"]["decision"]["ground"]   # the county sees why
    wait_until(lambda: net.get("county", "liaison", f"/api/v1/tasks/{late_id}"), timeout=120,
               what="the task sent while the county was down")
    wait_until(lambda: net.get("city", "liaison", f"/api/v1/tasks/{early['id']}")["targets"]
               [COUNTY]["state"] == "reported", timeout=120, what="the report made while down")
    wait_until(lambda: county_rollup(net)[0]["active"] == 1, timeout=120, what="the removal")
    # once each
    linked = net.get("city", "proposals", "/api/v1/proposals?kind=linked&limit=50")["items"]
    assert sorted(p["id"] for p in linked) == sorted(f"{CITY}-{p}" for p in (first, second))
    got = net.get("county", "liaison", "/api/v1/tasks?direction=received&limit=50")["items"]
    assert sorted(t["id"] for t in got) == sorted([early["id"], late_id])
    events = [h for h in net.get("county", "proposals", f"/api/v1/proposals/{first}")["history"]]
    assert len(events) == len({(h["action"], h["at"]) for h in events})
