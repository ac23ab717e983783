"""三级联动 between a county and its city: two RabbitMQ nodes on 127.0.0.1 linked
by federation (set up by ``zhzx link``'s code), two Mongo wire servers, and the
services of each platform running against their own."""
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from kombu import Connection, Exchange, Producer

from deploy.local import Broker, MongoWire, free_port
from services.common import federation
from services.common.envelope import make_event
from services.liaison.service import LiaisonService
from services.members import demo
from services.members.service import MembersService
from tests import support
from tests.support import Client, wait_until, with_port

pytestmark = pytest.mark.service

COUNTY, CITY = "140428", "140400"


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
        return federation.BrokerRef(self.broker.mgmt_url, "127.0.0.1", self.broker.amqp_port)


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
                     ORG_NAME="长治市", ORG_LEVEL="city", PARENT_ORG="140000")
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


def reported_up(county_conf, member, title):
    author = Client(county_conf, f"member:{member}")
    oid = author.post("/api/v1/opinions", json={"title": title, "content": "建议……"}).json()["id"]
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
    fourth = Client(county_conf, f"member:{b}").post("/api/v1/opinions", json={
        "title": "关于防汛的建议", "content": "建议……"}).json()["id"]
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


def test_an_event_addressed_to_another_county_is_not_delivered_here(pair, platforms):
    county_side, city_side = pair
    county_conf, city_conf, _, (a, *_) = platforms
    oid = reported_up(county_conf, a, "关于校园安全的建议")
    wait_until(lambda: city_item(city_conf, oid), timeout=60, what="intake")
    down = Exchange("zhzx.down", type="topic", durable=True)

    def feedback(to, action, **extra):
        event = make_event("opinion.feedback", origin=CITY, aggregate_id=f"{COUNTY}-{oid}",
                           seq=1, payload=dict({"opinion_id": oid, "action": action,
                                                "title": "t", "year": 2026}, **extra))
        with Connection(city_side.amqp_uri) as conn:
            Producer(conn.channel()).publish(event, exchange=down, routing_key=f"{to}.{event['type']}",
                                             serializer="json", declare=[down])

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
    oid = Client(county_conf, f"member:{a}").post("/api/v1/opinions", json={
        "title": "关于老旧小区改造的建议", "content": "建议……"}).json()["id"]
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
