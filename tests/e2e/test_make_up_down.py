"""`zhzx up --pair --one-process` / `zhzx down --pair` (what `make up` /
`make down` run: each platform's services in one process, deploy/cohost.py),
on shifted ports and a run directory of the test's own, so a platform started
by `make up` on this machine is left alone. One process per service, `zhzx up`
without `--one-process`, is what the fault tests run."""
import json
import os
import re
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange

from deploy.tls import ensure_node
from deploy.local import PLATFORMS, SERVICES, pid_alive, port_open, read_pid
from tests.support import ROOT, free_shift, wait_until

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def zhzx(env, *args, timeout=300):
    return subprocess.run([str(BIN / "zhzx"), *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def brokers_trust_as_little_as_they_should(run, shift):
    """Links over TLS with peer verification; no guest; each service as its
    own user, kept from the calls that answer notify only."""
    county = PLATFORMS["county"]
    admin = json.loads((run / "county" / "broker-users.json").read_text())
    mgmt = f"http://127.0.0.1:{county['mgmt'] + shift}/api"
    assert requests.get(f"{mgmt}/overview", auth=("guest", "guest"), timeout=10).status_code \
        == 401
    connections = requests.get(f"{mgmt}/connections", auth=("zhzx-admin", admin["admin"]),
                               timeout=10).json()
    users = {c["user"] for c in connections}
    assert {f"svc-{s}" for s in SERVICES} | {"link-140400"} <= users, users
    assert all(c["ssl"] for c in connections if c["user"] == "link-140400"), connections
    uri = f"amqp://svc-proposals:{admin['svc-proposals']}@127.0.0.1:{county['amqp'] + shift}/"
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        with pytest.raises(AccessRefused, match="members.get_contact"):
            conn.Producer().publish({}, exchange=Exchange("nameko-rpc", "topic", durable=True),
                                    routing_key="members.get_contact", declare=[])
    # the TLS listener: no client certificate, or one of another CA, is refused
    ensure_node(run / "rogue-ca", run / "rogue", "rogue.localhost")
    for client in (None, run / "rogue"):
        ctx = ssl.create_default_context(cafile=str(run / "ca" / "ca.crt"))
        if client:
            ctx.load_cert_chain(client / "tls.crt", client / "tls.key")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with socket.create_connection(("127.0.0.1", county["amqps"] + shift), 10) as raw, \
                    ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"AMQP\x00\x00\x09\x01")
                assert tls.recv(8)   # TLS 1.3 reports a refused certificate here


def test_up_twice_then_down_stops_exactly_what_it_started(tmp_path):
    shift = free_shift()
    env = dict(os.environ, ZHZX_RUN_DIR=str(tmp_path / "run"), ZHZX_PORT_SHIFT=str(shift))
    base = f"http://127.0.0.1:{8001 + shift}"
    first = zhzx(env, "up", "--pair", "--one-process", timeout=600)
    try:
        assert first.returncode == 0, first.stdout + first.stderr
        assert "200 appointed" in first.stdout and "platform is ready" in first.stdout
        assert "250 imported, 0 already there, 0 refused" in first.stdout
        liaison = re.search(r"demo liaison: 30 stations created; .*: (\d+) imported, "
                            r"0 already there, 0 refused", first.stdout)
        assert liaison, first.stdout
        token = zhzx(env, "token", "--role", "admin").stdout.strip()
        city_token = zhzx(env, "token", "--platform", "city", "--role", "admin").stdout.strip()
        assert "120 appointed" in first.stdout and "linked: county 140428 ⇄ city 140400" \
            in first.stdout
        status = zhzx(env, "link", "status")
        assert status.stdout.count("running") == 2, status.stdout + status.stderr
        for port in (PLATFORMS["county"]["amqps"], PLATFORMS["city"]["amqps"]):
            assert f"over amqps://localhost:{port + shift}/" in status.stdout, status.stdout
        brokers_trust_as_little_as_they_should(tmp_path / "run", shift)
        # 社情民意 reported up by the county reaches the city's intake
        issued = requests.get(f"http://127.0.0.1:{8003 + shift}/api/v1/opinions",
                              params={"state": "issued", "limit": 1}, timeout=30,
                              headers={"Authorization": f"Bearer {token}"}).json()["items"][0]
        reported = requests.post(
            f"http://127.0.0.1:{8003 + shift}/api/v1/opinions/{issued['id']}/actions/report",
            json={"level": "city"}, timeout=30, headers={"Authorization": f"Bearer {token}"})
        assert reported.status_code == 200, reported.text
        wait_until(lambda: requests.get(
            f"http://127.0.0.1:{8103 + shift}/api/v1/opinions/140428-{issued['id']}",
            timeout=30, headers={"Authorization": f"Bearer {city_token}"}).status_code == 200,
            timeout=60, what="the county's item in the city's intake")
        # the demo on both sides: the county's roster, its forwarded proposals
        # and the city's tasks cross the link; ten people sit on both committees
        def city_get(port, path):
            return requests.get(f"http://127.0.0.1:{port + shift}{path}", timeout=30,
                                headers={"Authorization": f"Bearer {city_token}"}).json()

        def county_rollup():
            body = city_get(8101, "/api/v1/members/rollup")
            county = next(p for p in body["platforms"] if p["org"] == "140428")
            return body if county["active"] == 200 else None
        rollup = wait_until(county_rollup, timeout=180, what="the county's roster at the city")
        assert rollup["people"]["on_several_committees"] == 10
        linked = wait_until(lambda: (lambda items: items if len(items) == 2 else None)(
            city_get(8102, "/api/v1/proposals?kind=linked")["items"]), timeout=120,
            what="the county's forwarded proposals at the city")
        assert {p["source"]["org"] for p in linked} == {"140428"}
        wait_until(lambda: len(requests.get(
            f"http://127.0.0.1:{8003 + shift}/api/v1/tasks?direction=received", timeout=30,
            headers={"Authorization": f"Bearer {token}"}).json()["items"]) == 3,
            timeout=120, what="the city's tasks at the county (one passed on from the province)")
        # the province: two county items reported on by the city, adopted and
        # instructed by the (simulated) provincial office, the feedback back down
        assert "demo province: 2 of the county's 社情民意 reported to the province" in \
            first.stdout, first.stdout

        sent = requests.get(f"http://127.0.0.1:{PLATFORMS['city']['province'] + shift}"
                            "/admin/records?kind=opinions", timeout=30).json()["items"]
        assert sorted(r["body"]["path"][0] for r in sent) == ["140428", "140428"]

        def at_county(record):
            oid = record["local_id"].split("-", 1)[1]
            return requests.get(f"http://127.0.0.1:{8003 + shift}/api/v1/opinions/{oid}",
                                timeout=30, headers={"Authorization": f"Bearer {token}"}).json()

        def provincial_feedback():
            items = [at_county(r) for r in sent]
            adopted = [o for o in items if "12" in str((o["adopted"].get("province") or {})
                                                       .get("note"))]
            instructed = [o for o in items if any(i["leader"] == "副省长"
                                                  for i in o["instructions"])]
            return (adopted, instructed) if adopted and instructed else None
        adopted, instructed = wait_until(provincial_feedback, timeout=120,
                                         what="the province's feedback at the county")
        assert len(adopted) == 1 and len(instructed) == 1
        # … and credits the county author's 履职档案 with the province's adoption
        author, item = adopted[0]["author_member"], adopted[0]["id"]

        def credited():
            record = requests.get(f"{base}/api/v1/records/{author}", timeout=30,
                                  params={"year": adopted[0]["year"]},
                                  headers={"Authorization": f"Bearer {token}"}).json()
            return [f for f in record["facts"] if f["kind"] == "opinion_adopted_province"
                    and f["ref"] == item] or None
        wait_until(credited, timeout=60, what="社情民意省级采用 in the author's record")
        # the county proposal the city forwarded on: the provincial committee's
        # progress shows at the county
        assert "1 of the county's proposals forwarded on to the provincial committee" in \
            first.stdout, first.stdout

        def province_progress():
            items = requests.get(f"http://127.0.0.1:{8002 + shift}/api/v1/proposals",
                                 params={"state": "forwarded", "limit": 10}, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}).json()["items"]
            shown = [((p.get("upstream") or {}).get("province") or {}).get("state_label")
                     for p in items]
            return shown if "省政协已立案" in shown else None
        wait_until(province_progress, timeout=120, what="the province's progress at the county")
        sim = f"http://127.0.0.1:{PLATFORMS['city']['province'] + shift}/admin"
        [task] = requests.get(f"{sim}/tasks", timeout=30).json()["items"]
        wait_until(lambda: [r["state"] for r in requests.get(f"{sim}/tasks", timeout=30).json()[
            "items"][0]["reports"]] == ["accepted"], timeout=60,
            what="the city's acceptance of the provincial task at the province")
        # the yearly figures: the city's own and the county's, once its roster is all up
        pushed = requests.post(f"http://127.0.0.1:{8105 + shift}/api/v1/province/figures",
                               timeout=60, headers={"Authorization": f"Bearer {city_token}"})
        assert pushed.status_code == 200, pushed.text

        def figures():
            got = {f["org"]: f["body"] for f in requests.get(f"{sim}/figures", timeout=30).json()[
                "items"]}
            return got if (got.get("140428") or {}).get("roster", {}).get("active") == 200 \
                else None
        got = wait_until(figures, timeout=60, what="both platforms' figures at the province")
        assert got["140428"]["opinions"]["reported"]["city"] > 50
        assert got["140400"]["people"]["on_several_committees"] == 10
        assert got["140400"]["roster"]["active"] == 120
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 200
        listed = requests.get(f"{base}/api/v1/members", params={"limit": 5}, timeout=10,
                              headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and len(listed.json()["items"]) == 5
        stats = requests.get(f"http://127.0.0.1:{8002 + shift}/api/v1/proposals/statistics",
                             timeout=30, headers={"Authorization": f"Bearer {token}"})
        assert stats.status_code == 200 and stats.json()["submitted"] > 200
        figures = requests.get(f"http://127.0.0.1:{8003 + shift}/api/v1/liaison/statistics",
                               timeout=30, headers={"Authorization": f"Bearer {token}"}).json()
        assert figures["requests"]["total"] == 300 and figures["stations"]["total"] == 30
        assert figures["opinions"]["reported"]["city"] > 50
        # the city's tasks reach the county office's inbox through notify; the
        # year of history the demo imported notifies nobody: the only e-mails
        # are to the two authors (those with e-mail), told of the province's
        # adoption and instruction
        def office_tasks():
            box = requests.get(f"http://127.0.0.1:{8004 + shift}/api/v1/inbox?limit=200",
                               timeout=30, headers={"Authorization": f"Bearer {token}"}).json()
            return [n for n in box["items"] if "交办的任务" in n["body"]]
        assert len(wait_until(lambda: (lambda t: t if len(t) == 3 else None)(office_tasks()),
                              timeout=120, what="the city's tasks in the office inbox")) == 3
        mails = requests.get(
            f"http://127.0.0.1:{8004 + shift}/api/v1/deliveries?channel=email", timeout=30,
            headers={"Authorization": f"Bearer {token}"}).json()["items"]
        assert len(mails) <= 2 and all(d["kind"] == "opinion" for d in mails), mails

        second = zhzx(env, "up", "--pair", "--one-process", timeout=600)
        assert second.returncode == 0, second.stdout + second.stderr
        # broker, database, mail, the services' process and the supervisor, on both
        # platforms (and the city's provincial platform simulator)
        assert second.stdout.count("already running") == 2 * (3 + 1 + 1) + 1
        status = json.loads(zhzx(env, "status", "--pair", "--json").stdout)
        for platform in status:
            assert platform["supervisor"], platform
            sim = ("province",) if platform["platform"] == "city" else ()
            assert [(r["part"], r["state"], r["readiness"]) for r in platform["parts"]] == [
                (part, "running", "ready") for part in
                ("broker", "mongo", "mail", *sim, "services")], platform
            # each part's resident memory, and the platform's total, for operators
            assert all(r["rss_bytes"] > 0 for r in platform["parts"]), platform
            assert platform["rss_bytes"] == sum(r["rss_bytes"] for r in platform["parts"])
        # one process: its services are restarted together, not one by one
        refused = zhzx(env, "restart", "proposals")
        assert refused.returncode != 0 and "one process" in refused.stderr, refused.stderr
        switched = zhzx(env, "up", "--pair")
        assert switched.returncode != 0 and "in one process" in switched.stderr, switched.stderr
        # ZHZX_RUN_DIR alone is enough: the shift is read from the run directory
        alone = {k: v for k, v in env.items() if k != "ZHZX_PORT_SHIFT"}
        linked = zhzx(alone, "link", "status")
        assert linked.stdout.count("running") == 2, linked.stdout + linked.stderr
        assert "0 appointed, 0 updated, 200 unchanged" in second.stdout
        assert "0 imported, 250 already there" in second.stdout
        assert ("demo liaison: 0 stations created; " in second.stdout and
                f"0 imported, {liaison.group(1)} already there" in second.stdout), second.stdout

        rebuilt = zhzx(env, "records", "rebuild")
        assert rebuilt.returncode == 0 and "rebuilt" in rebuilt.stdout, rebuilt.stderr

        minted = zhzx(env, "token", "--role", "reviewer")
        assert minted.returncode == 0
        assert requests.get(f"{base}/api/v1/members", timeout=10, headers={
            "Authorization": f"Bearer {minted.stdout.strip()}"}).status_code == 200
    finally:
        pids = []
        for name in PLATFORMS:
            run = tmp_path / "run" / name
            pids += [read_pid(p) for p in [run / "pids" / "services.pid",
                                           run / "mongo" / "mongo.pid", run / "rabbitmq" / "broker.pid",
                        run / "mail" / "smtp.pid", run / "supervisor.pid"]
                     + ([run / "province" / "province.pid"] if name == "city" else [])]
        down = zhzx(env, "down", "--pair")
    assert down.returncode == 0, down.stdout + down.stderr
    assert all(pid and not pid_alive(pid) for pid in pids)
    assert not port_open(8001 + shift) and not port_open(5672 + shift)
    assert not port_open(8101 + shift) and not port_open(5673 + shift)
    assert not port_open(8004 + shift) and not port_open(2525 + shift)
