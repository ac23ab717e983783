"""The provincial protocol: the known-answer vectors of docs/provincial.md,
checked with openssl (not our code), the simulator's independent check of
what the adapter signs, and the adapter's rules for answers."""
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from deploy.province_sim import Province
from services.provincial import domain, protocol

ROOT = Path(__file__).resolve().parents[2]
SECRET = "zhzx-test-vector-secret-0123456789abcdef"
BODY = '{"local_id":"OP-2026-0001","title":"测试"}'.encode()
VECTORS = [  # method, path, query, timestamp, nonce, body, algorithm, signature
    ("POST", "/api/v1/opinions", {}, 1767225600000, "3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b", BODY,
     "hmac-sm3", "d9f836fa5bd18ad5816bbd91f91a5f41692d012b96890b837f76524e70058708"),
    ("GET", "/api/v1/feedback", {"since": "12", "limit": "100"}, 1767225600000,
     "0c1d2e3f405162738495a6b7c8d9eafb", b"", "hmac-sm3",
     "a9b992aba4c3303a5d2471afdf15b25e1c01a0475c64d7b3bf9f064bc5f3f680"),
    ("POST", "/api/v1/opinions", {}, 1767225600000, "3f2a9c1e0b7d4e5f8a6b1c2d3e4f5a6b", BODY,
     "hmac-sha256", "3cb57bcdbbc8c23062b72a13d607ffe5f765b48ab61743edacbb41b600966f79"),
]


def openssl(args, data):
    out = subprocess.run(["openssl", "dgst", *args], input=data, capture_output=True,
                         check=True).stdout.decode()
    return out.rsplit("= ", 1)[1].strip()


@pytest.mark.parametrize("vector", VECTORS)
def test_known_answers_agree_with_openssl_and_the_document(vector):
    method, path, query, stamp, nonce, body, algorithm, expected = vector
    digest = "-sm3" if algorithm == "hmac-sm3" else "-sha256"
    pairs = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    text = "\n".join([method, path, pairs, str(stamp), nonce, openssl([digest], body)])
    assert openssl([digest, "-hmac", SECRET], text.encode()) == expected
    assert protocol.canonical(method, path, query, stamp, nonce, body, algorithm) == text
    assert protocol.signature(SECRET, text, algorithm) == expected
    assert expected in (ROOT / "docs" / "provincial.md").read_text()


def test_the_simulator_accepts_what_the_adapter_signs_and_refuses_the_rest(tmp_path):
    province = Province(tmp_path, {"140400": ("s" * 40, "hmac-sm3")})
    body = b'{"a": 1}'

    def check(headers, path="/api/v1/opinions", query=""):
        return province.check("POST", path, query, headers, body)[0]
    headers = protocol.signed_headers("140400", "s" * 40, "POST", "/api/v1/opinions", {}, body)
    assert check(headers) is None
    assert check(headers) == "AUTH_NONCE_REUSED"
    fresh = protocol.signed_headers("140400", "t" * 40, "POST", "/api/v1/opinions", {}, body)
    assert check(fresh) == "AUTH_SIGNATURE"
    old = protocol.signed_headers("140400", "s" * 40, "POST", "/api/v1/opinions", {}, body,
                                  now_ms=int((time.time() - 301) * 1000))
    assert check(old) == "AUTH_TIMESTAMP"
    moved = protocol.signed_headers("140400", "s" * 40, "POST", "/api/v1/opinions", {}, body)
    assert check(moved, path="/api/v1/proposals") == "AUTH_SIGNATURE"
    other = protocol.signed_headers("140499", "s" * 40, "POST", "/api/v1/opinions", {}, body)
    assert check(other) == "AUTH_APP"
    queried = protocol.signed_headers("140400", "s" * 40, "POST", "/api/v1/opinions",
                                      {"b": "2", "a": "x y"}, body)
    assert check(queried, query="b=2&a=x+y") is None


def test_answers_are_transient_or_permanent():
    assert protocol.classify(201, {"id": "OP-1"}).kind == "ok"
    storm = protocol.classify(429, {"code": "RATE_LIMITED"}, {"Retry-After": "7"})
    assert (storm.kind, storm.retry_after) == ("transient", 7.0)
    assert protocol.classify(503, None).kind == "transient"
    refused = protocol.classify(422, {"code": "UNKNOWN_CODE", "message": "类别编码 x 不存在"})
    assert (refused.kind, refused.code) == ("permanent", "UNKNOWN_CODE")


def test_a_delivery_backs_off_honours_retry_after_and_parks_a_refusal():
    now = datetime(2026, 11, 27, 8, 0, 0)
    doc = dict(domain.new_delivery("opinion", "OP-1", "e1", {}, now), attempts=3)
    fields, events = domain.answered(doc, protocol.Answer("transient", 503, "UNAVAILABLE"), now)
    wait = (datetime.fromisoformat(fields["next_at"]) - now).total_seconds()
    assert fields["state"] == "pending" and events == [] and 4 <= wait <= 5
    fields, _ = domain.answered(doc, protocol.Answer("transient", 429, retry_after=60), now)
    assert (datetime.fromisoformat(fields["next_at"]) - now).total_seconds() >= 60
    fields, events = domain.answered(doc, protocol.Answer("permanent", 422, "UNKNOWN_CODE",
                                                          "类别编码 x 不存在"), now)
    assert fields["state"] == "refused" and events[0][0] == "province.refused"
    assert domain.retried(dict(doc, **fields), now)["state"] == "pending"
    assert domain.backoff_seconds(30) <= 301


def test_an_unmapped_value_names_the_table_and_the_value():
    item = {"id": "OP-1", "title": "t", "content": "c", "category": "夜间经济", "author": {}}
    with pytest.raises(protocol.Unmapped, match="夜间经济"):
        domain.opinion_body(item, own_org="140400", province_org="140000",
                            tables={"categories": {"社会民生": "04"}})
    body = domain.opinion_body(dict(item, category="社会民生", path=["140428"]),
                               own_org="140400", province_org="140000",
                               tables={"categories": {"社会民生": "04"}})
    assert body["path"] == ["140428", "140400", "140000"] and body["category"] == "04"


def test_the_protocol_document_is_valid_openapi_31():
    import yaml
    from openapi_spec_validator import validate
    doc = yaml.safe_load((ROOT / "docs" / "province-api.yaml").read_text())
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    codes = set(doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"])
    sim = (ROOT / "deploy" / "province_sim.py").read_text()
    # every code the simulator answers with is documented
    import re
    assert set(re.findall(r'"code": "([A-Z_]+)"', sim)) | {
        "AUTH_APP", "AUTH_TIMESTAMP", "AUTH_NONCE_REUSED", "AUTH_SIGNATURE"} <= codes


TABLES = {"sectors": {"经济界": "S09", "教育界": "S11"}, "parties": {"cpc": "01", "none": "10"},
          "proposal_categories": {"economy": "01", "livelihood": "04", "other": "99"}}


def test_yearly_figures_are_per_platform_and_only_for_counties_that_sent_any():
    roster = {"platforms": [
        {"org": "140400", "org_name": "长治市", "level": "own", "active": 2,
         "by_sector": {"经济界": 2}, "by_party": {"cpc": 1, "none": 1},
         "by_committee": {"提案委": 2}, "by_role": {"member": 2}},
        {"org": "140428", "org_name": "长子县", "level": "linked", "received": 1, "active": 1,
         "by_sector": {"教育界": 1}, "by_party": {"cpc": 1}, "by_committee": {},
         "by_role": {}},
        {"org": "140426", "org_name": "黎城县", "level": "linked", "received": 0, "active": 0}],
        "people": {"persons": 2, "memberships": 3, "on_several_committees": 1}}
    proposals = {"own": {"registered": 4, "by_category": {
        "economy": {"count": 3, "share": 0.75}, "livelihood": {"count": 1, "share": 0.25},
        "other": {"count": 0, "share": 0}}},
        "counties": [{"org": "140428", "org_name": "长子县", "as_of": "2026-11-20T00:00:00Z",
                      "figures": {"registered": 1, "by_category": {}}},
                     {"org": "140426", "org_name": "黎城县", "as_of": None, "figures": None}]}
    liaison = {"own": {"opinions": {"collected": 5}, "requests": {}}, "counties": []}
    items = domain.yearly_figures(2026, own_org="140400", own_name="长治市", level="city",
                                  roster=roster, proposals=proposals, liaison=liaison,
                                  today="2026-11-27")
    assert sorted(items) == ["140400", "140428"]   # 黎城 sent nothing yet
    city, county = items["140400"], items["140428"]
    assert city["people"]["persons"] == 2 and county["people"] is None
    assert city["opinions"] == {"collected": 5} and county["opinions"] == {}
    assert county["roster"]["active"] == 1 and county["as_of"] == "2026-11-20T00:00:00Z"
    body = domain.figures_body(city, own_org="140400", province_org="140000", tables=TABLES)
    assert body["roster"]["by_sector"] == {"S09": 2}
    assert body["roster"]["by_party"] == {"01": 1, "10": 1}
    assert body["proposals"]["by_category"] == {"01": 3, "04": 1, "99": 0}
    assert domain.endpoint({"kind": "figures", "item": city}) == (
        "PUT", "/api/v1/figures/140400/2026", "figures")
    with pytest.raises(protocol.Unmapped):
        domain.figures_body(dict(city, roster=dict(city["roster"], by_sector={"新界别": 1})),
                            own_org="140400", province_org="140000", tables=TABLES)


def test_changed_figures_get_a_fresh_key_and_unchanged_or_in_flight_ones_wait():
    now = datetime(2026, 11, 27, 9, 0, 0)
    item = {"org": "140428", "year": 2026, "title": "t"}
    doc = domain.figures_change(None, item, "d1", "k1", now)
    assert (doc["_id"], doc["key"], doc["digest"]) == ("figures:140428:2026", "k1", "d1")
    assert domain.figures_change(dict(doc, state="acknowledged"), item, "d1", "k2", now) is None
    assert domain.figures_change(dict(doc, state="sending"), item, "d2", "k2", now) is None
    fields = domain.figures_change(dict(doc, state="acknowledged"), item, "d2", "k2", now)
    assert (fields["state"], fields["key"], fields["attempts"]) == ("pending", "k2", 0)


def test_a_published_task_becomes_a_local_event_and_a_malformed_one_nothing():
    item = {"cursor": "9", "kind": "task_published", "record_id": "140000-PT0001",
            "task_kind": "research", "title": "联合调研", "content": "内容",
            "due_on": "2026-12-31", "issued_on": "2026-11-27", "issuer": "省政协办公厅"}
    kind, payload = domain.feedback_event(item, None)
    assert kind == "province.task_published"
    assert (payload["task_id"], payload["kind"], payload["due_on"]) == (
        "140000-PT0001", "research", "2026-12-31")
    assert domain.feedback_event(dict(item, title=None), None) is None
