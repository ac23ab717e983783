"""Members registry through HTTP and RPC, on a real broker and Mongo wire server."""
import json

import pymongo
import requests
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from deploy.demo_data import members as demo
from services.members.service import MembersService
from tests.support import Client, wait_until

pytestmark = pytest.mark.service

PERSONAL_VALUES = ("13912345678", "140428199003071235")


def valid_member(**over):
    data = {"name": "王建国", "gender": "male", "ethnicity": "汉族", "party": "cdl",
            "sector": "教育界", "committees": ["提案委", "教科卫体委"], "role": "standing",
            "term": "第十届", "employer": "长子县第一中学", "post": "校长",
            "phone": "13912345678", "id_number": "140428199003071235",
            "appointed_on": "2021-12-28"}
    data.update(over)
    return data


def members_collection(config):
    client = pymongo.MongoClient(config["MONGO_URI"])
    return client[config["MONGO_DB_PREFIX"] + "members"]["members"]


def settled(config, member_id):
    """True once the local events of ``member_id`` have been confirmed by the
    broker (its roster events for the parent city wait for a link)."""
    doc = members_collection(config).find_one({"_id": member_id}, {"_outbox": 1})
    return doc is not None and all("link" in e for e in (doc.get("_outbox") or {}).values())


@pytest.fixture
def svc(run_service, config, probe):
    events = probe("members.events")
    run_service(MembersService)
    return Client(config, "admin"), events


def test_invalid_input_gives_field_messages_and_changes_nothing(svc, config):
    admin, events = svc
    bad = valid_member(phone="1391234567", id_number="140428199003071236", committees=[],
                       party="xyz", sector="不存在界", unknown_field=1)
    resp = admin.post("/api/v1/members", json=bad)
    assert resp.status_code == 422
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    errors = resp.json()["errors"]
    # every invalid field at once: the platform's 界别 list too, not after the rest passes
    assert set(errors) >= {"phone", "id_number", "committees", "party", "unknown_field",
                           "sector"}
    assert "校验位" in errors["id_number"][0]
    assert members_collection(config).count_documents({}) == 0

    # sector is checked against the platform's list once the schema passes
    resp = admin.post("/api/v1/members", json=valid_member(sector="不存在界"))
    assert resp.status_code == 422 and "sector" in resp.json()["errors"]
    assert admin.post("/api/v1/members", data="{not json",
                      headers={"Content-Type": "application/json"}).status_code == 400
    assert admin.post("/api/v1/members", data="x",
                      headers={"Content-Type": "text/plain"}).status_code == 415
    assert members_collection(config).count_documents({}) == 0

    # the next valid change is the only event that ever reaches the exchange
    created = admin.post("/api/v1/members", json=valid_member())
    assert created.status_code == 201
    wait_until(lambda: settled(config, created.json()["id"]), what="outbox drained")
    received = events.wait_for(1)
    assert [e["type"] for e in received] == ["member.appointed"]


def test_each_change_emits_one_event_with_envelope_and_no_personal_data(svc, config):
    admin, events = svc
    created = admin.post("/api/v1/members", json=valid_member(),
                         headers={"X-Trace-Id": "trace-abc"})
    assert created.status_code == 201, created.text
    member = created.json()
    assert created.headers["X-Trace-Id"] == "trace-abc"
    member_id = member["id"]
    assert member["phone"] == "13912345678"  # admin sees personal fields
    wait_until(lambda: settled(config, member_id))
    assert len(events.wait_for(1)) == 1

    resp = admin.patch(f"/api/v1/members/{member_id}",
                       json={"phone": "13800001111", "post": "副校长", "seq": 1})
    assert resp.status_code == 200 and resp.json()["seq"] == 2
    stale = admin.patch(f"/api/v1/members/{member_id}", json={"post": "校长", "seq": 1})
    assert stale.status_code == 409
    resp = admin.post(f"/api/v1/members/{member_id}/end",
                      json={"status": "removed", "reason": "本人申请辞去委员", "ended_on": "2024-03-01"})
    assert resp.status_code == 200 and resp.json()["status"] == "removed"
    again = admin.post(f"/api/v1/members/{member_id}/end",
                       json={"status": "removed", "reason": "重复操作", "ended_on": "2024-03-02"})
    assert again.status_code == 409 and again.json()["current_state"] == "removed"

    wait_until(lambda: settled(config, member_id))
    received = events.wait_for(3)
    assert [e["type"] for e in received] == ["member.appointed", "member.updated",
                                            "member.removed"]
    assert [e["seq"] for e in received] == [1, 2, 3]
    first = received[0]
    assert set(first) == {"event_id", "type", "version", "occurred_at", "origin",
                          "aggregate_id", "seq", "trace_id", "actor", "payload"}
    assert first["origin"] == "140428" and first["aggregate_id"] == member_id
    assert first["trace_id"] == "trace-abc" and first["actor"] == "tester"
    assert received[1]["payload"]["changed"] == ["phone", "post"]
    # the roster copies for the parent city (waiting here: no link) hold none either
    waiting = members_collection(config).find_one({"_id": member_id})["_outbox"].values()
    synced = sorted(waiting, key=lambda e: e["seq"])
    assert [(e["type"], e["seq"], e["link"]["to"]) for e in synced] == [
        ("member.synced", 1, "140400"), ("member.synced", 2, "140400"),
        ("member.synced", 3, "140400")]
    assert synced[-1]["payload"]["status"] == "removed"
    raw = json.dumps(received + synced, ensure_ascii=False)
    for value in PERSONAL_VALUES + ("13800001111", "1990-03-07"):
        assert value not in raw


def test_roles_org_and_masking(svc, config):
    admin, _ = svc
    member_id = admin.post("/api/v1/members", json=valid_member()).json()["id"]
    assert Client(config).get("/api/v1/members").status_code == 401
    other = Client(config, "admin", org="140400").get("/api/v1/members")
    assert other.status_code == 403 and other.json()["detail"] == "令牌属于其他平台"
    # a real token of the city is signed with the city's own key: still 403
    from services.common.auth import issue_token
    city = issue_token("the-city-platforms-own-jwt-secret-32b+", org="140400",
                       roles=["admin"], sub="city-admin")
    foreign = requests.get(f"http://{config['WEB_SERVER_ADDRESS']}/api/v1/members",
                           headers={"Authorization": f"Bearer {city}"}, timeout=10)
    assert foreign.status_code == 403 and foreign.json()["detail"] == "令牌属于其他平台"
    forged = issue_token("the-city-platforms-own-jwt-secret-32b+", org="140428",
                         roles=["admin"], sub="forger")
    assert requests.get(f"http://{config['WEB_SERVER_ADDRESS']}/api/v1/members", timeout=10,
                        headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    reviewer = Client(config, "reviewer")
    assert reviewer.post("/api/v1/members", json=valid_member()).status_code == 403
    seen = reviewer.get(f"/api/v1/members/{member_id}").json()
    assert seen["phone"] == "139****5678" and seen["id_number"] == "1404**********1235"
    own = Client(config, f"member:{member_id}").get(f"/api/v1/members/{member_id}").json()
    assert own["phone"] == "13912345678"
    assert Client(config, "member:someone-else").get(
        f"/api/v1/members/{member_id}").status_code == 403
    assert Client(config, "citizen").get("/api/v1/members").status_code == 403


def test_one_person_two_memberships(svc, config):
    admin, _ = svc
    ninth = admin.post("/api/v1/members", json=valid_member(term="第九届")).json()
    tenth = admin.post("/api/v1/members", json=valid_member(term="第十届")).json()
    assert ninth["id"] != tenth["id"] and ninth["person_id"] == tenth["person_id"]
    dup = admin.post("/api/v1/members", json=valid_member(term="第十届"))
    assert dup.status_code == 422 and "id_number" in dup.json()["errors"]
    listed = admin.get(f"/api/v1/persons/{ninth['person_id']}/memberships").json()
    assert sorted(m["term"] for m in listed["items"]) == ["第九届", "第十届"]


def test_search_filters_and_pagination(svc, config):
    admin, _ = svc
    report = admin.post("/api/v1/members/import", data=demo.roster_csv(demo.members(60)),
                        headers={"Content-Type": "text/csv"}).json()
    assert report["created"] == 60
    rows = demo.members(60)
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 25, **({"cursor": cursor} if cursor else {})}
        body = admin.get("/api/v1/members", params=params).json()
        seen += [m["id"] for m in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 60 == len(set(seen))
    committee = rows[0]["committees"][0]
    expected = sum(1 for r in rows if committee in r["committees"] and r["party"] == "cpc")
    got = admin.get("/api/v1/members", params={"committee": committee, "party": "cpc",
                                               "limit": 200}).json()["items"]
    assert len(got) == expected
    surname = rows[3]["name"][0]
    by_name = admin.get("/api/v1/members", params={"name": surname, "limit": 200}).json()
    assert len(by_name["items"]) == sum(1 for r in rows if surname in r["name"])
    assert admin.get("/api/v1/members", params={"limit": 0}).status_code == 422
    assert admin.get("/api/v1/members", params={"cursor": "%%%"}).status_code == 422
    assert admin.get("/api/v1/members", params={"colour": "red"}).status_code == 422


def test_rpc_methods(svc, config):
    admin, _ = svc
    member = admin.post("/api/v1/members", json=valid_member()).json()
    with ServiceRpcProxy("members", config) as rpc:
        got = rpc.get_member(member["id"])
        assert got["name"] == "王建国" and "phone" not in got and "id_number" not in got
        assert rpc.get_member("nobody") is None
        assert list(rpc.get_members([member["id"], "nobody"])) == [member["id"]]
        assert [m["member_id"] for m in rpc.find_members(committee="提案委")] == [member["id"]]
        assert rpc.find_members(committee="文史委") == []
        # contacts answer notify only (a test proxy is not notify)
        with pytest.raises(RemoteError) as refused:
            rpc.get_contact(member["id"])
        assert refused.value.exc_type == "NotYourCall"
        assert "13912345678" not in str(refused.value)


def test_health_readiness_and_metrics(svc, config):
    admin, _ = svc
    assert Client(config).get("/healthz").json()["status"] == "ok"
    ready = Client(config).get("/readyz")
    assert ready.status_code == 200 and ready.json()["org"] == "140428"
    admin.post("/api/v1/members", json=valid_member())
    admin.post("/api/v1/members", json=valid_member(phone="1"))
    text = Client(config).get("/metrics").text
    assert 'zhzx_entrypoint_calls_total{entrypoint="appoint",outcome="ok",service="members"}' in text
    assert 'outcome="rejected"' in text
    assert "zhzx_outbox_backlog" in text
    for value in PERSONAL_VALUES:
        assert value not in text


def test_unknown_paths_and_methods_are_problems(svc, config):
    admin, _ = svc
    missing = admin.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    assert missing.json()["title"] == "资源不存在"
    wrong = admin.request("DELETE", "/api/v1/members")
    assert wrong.status_code == 405 and "GET" in wrong.headers["Allow"]
    assert admin.get("/api/v1/members/nobody").json()["status"] == 404
