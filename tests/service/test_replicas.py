"""Two replicas of every service, each its own ``nameko run`` process, on one
real broker and Mongo wire server: one replica per platform runs each
background duty (the outbox relay, the notify dispatcher, the scans), and
when it is killed with SIGKILL under load the other takes over, losing
nothing and doubling nothing (common/lease.py)."""
import os
import signal
import threading
from datetime import datetime, timedelta

import pymongo
import pytest
import requests
import yaml
from kombu import Connection, Exchange, Queue

from deploy.demo_data import members as demo
from deploy.local import free_port, read_pid, start_service, stop_pid
from services.common.lease import LEASES
from services.common.mongo import database_name
from tests.fakes import SmtpServer
from tests.support import token, wait_until

pytestmark = pytest.mark.service
SERVICES = ("members", "proposals", "liaison", "notify", "provincial")
LEASE_SECONDS = 4


class Replicas:
    """Replicas ``a`` and ``b`` of every service of one county platform."""

    def __init__(self, config, tmp_path, smtp):
        self.config = dict(config, LEASE_SECONDS=LEASE_SECONDS, NOTIFY=dict(
            config["NOTIFY"], auto_dispatch=True, smtp=smtp.config(), defaults={
                "channels": {"default": ["inbox", "email"]}, "quiet": None,
                "digest": False}))
        self.tmp, self.pids, self.ports = tmp_path, {}, {}
        for service in SERVICES:
            for replica in "ab":
                port = free_port()
                conf = dict(self.config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}",
                            METRICS_ADDRESS=f"127.0.0.1:{free_port()}")
                path = tmp_path / f"{service}-{replica}.yaml"
                path.write_text(yaml.safe_dump(conf, allow_unicode=True))
                self.ports[service, replica] = port
                pid_file = tmp_path / f"{service}-{replica}.pid"
                start_service(service, path, {}, tmp_path / f"{service}-{replica}.log", pid_file)
                self.pids[service, replica] = read_pid(pid_file)
        self.db = pymongo.MongoClient(config["MONGO_URI"])
        wait_until(self.all_ready, timeout=240, what="both replicas of every service ready")

    def url(self, service, replica, path):
        return f"http://127.0.0.1:{self.ports[service, replica]}{path}"

    def ready(self, service, replica):
        log = self.tmp / f"{service}-{replica}.log"
        assert read_pid(self.tmp / f"{service}-{replica}.pid"), log.read_text()[-2000:]
        try:
            return requests.get(self.url(service, replica, "/readyz"), timeout=5).ok
        except requests.ConnectionError:
            return False

    def all_ready(self):
        return all(self.ready(s, r) for s, r in self.pids)

    def call(self, service, replica, method, path, **kw):
        headers = dict(kw.pop("headers", {}), Authorization=f"Bearer {token('admin')}")
        return requests.request(method, self.url(service, replica, path), timeout=60,
                                headers=headers, **kw)

    def lease(self, service, duty):
        return self.db[database_name(self.config, service)][LEASES].find_one({"_id": duty})

    def holder(self, service, duty):
        """The replica holding ``duty`` now (by the pid in the lease), or None."""
        doc = self.lease(service, duty)
        if doc is None:
            return None
        pid = int(doc["holder"].split(":")[1])
        return next((r for (s, r), p in self.pids.items() if s == service and p == pid), None)

    def kill(self, service, replica):
        os.kill(self.pids[service, replica], signal.SIGKILL)
        wait_until(lambda: not read_pid(self.tmp / f"{service}-{replica}.pid"), timeout=10,
                   what=f"{service} {replica} gone")

    def stop(self):
        for pid in self.pids.values():
            stop_pid(pid)
        self.db.close()


class Tap:
    """Every message published to ``exchange``, in arrival order."""

    def __init__(self, amqp_uri, exchange):
        self.conn = Connection(amqp_uri)
        self.queue = Queue(f"tap-{free_port()}", Exchange(exchange, type="topic", durable=True),
                           routing_key="#", durable=False, auto_delete=False)
        self.queue.maybe_bind(self.conn)
        self.queue.declare()
        self.seen = []

    def drain(self):
        while True:
            message = self.queue.get(no_ack=True)
            if message is None:
                return self.seen
            body = message.payload
            self.seen.append((body["event_id"], body["aggregate_id"], body["seq"]))

    def close(self):
        self.queue.delete()
        self.conn.release()


@pytest.fixture
def replicas(infra, config, tmp_path):
    smtp = SmtpServer(infra.base).start()
    started = Replicas(config, tmp_path, smtp)
    started.smtp = smtp
    yield started
    started.stop()
    smtp.stop()


def patch_all(replicas, replica, ids, round_no):
    for member_id in ids:
        resp = replicas.call("members", replica, "PATCH", f"/api/v1/members/{member_id}",
                             json={"employer": f"单位{round_no}"})
        assert resp.status_code == 200, resp.text


def expected_events(replicas):
    """(aggregate, seq) of every event the members' outbox had to publish."""
    docs = replicas.db[database_name(replicas.config, "members")]["members"].find(
        {}, {"seq": 1})
    return {(d["_id"], n) for d in docs for n in range(1, d["seq"] + 1)}


def in_order(seen):
    """True when each aggregate's events first arrived in ``seq`` order."""
    first, last = set(), {}
    for event_id, aggregate, seq in seen:
        if event_id in first:
            continue
        first.add(event_id)
        if seq <= last.get(aggregate, 0):
            return False
        last[aggregate] = seq
    return True


def test_one_replica_runs_each_duty_and_the_other_takes_over_after_a_sigkill(replicas):
    r = replicas
    tap = Tap(r.config["AMQP_URI"], "members.events")
    try:
        # every duty of every service is held by exactly one replica
        duties = {"members": ["outbox", "meeting_scan"], "notify": ["dispatch"],
                  "proposals": ["outbox", "deadline_scan"],
                  "liaison": ["outbox", "request_scan"],
                  "provincial": ["outbox", "send", "pull", "reconcile", "figures"]}
        for service, names in duties.items():
            for duty in names:
                wait_until(lambda: r.holder(service, duty), timeout=30,
                           what=f"{service} {duty} held")
        relay = r.holder("members", "outbox")
        other = "b" if relay == "a" else "a"
        # steady state: writes through the replica that does not relay; each
        # event published once, in order
        resp = r.call("members", other, "POST", "/api/v1/members/import",
                      data=demo.roster_csv(demo.members(40)),
                      headers={"Content-Type": "text/csv"})
        assert resp.status_code == 200 and resp.json()["created"] == 40, resp.text
        ids = sorted(m["id"] for m in r.call("members", other, "GET",
                                             "/api/v1/members?limit=50").json()["items"])
        patch_all(r, other, ids, 1)
        wanted = expected_events(r)
        wait_until(lambda: {(a, s) for _, a, s in tap.drain()} >= wanted, timeout=120,
                   what="every event of the steady phase")
        assert len(tap.seen) == len({e for e, _, _ in tap.seen}) == len(wanted)
        assert in_order(tap.seen)

        # a meeting notice to every member: one e-mail each, though two
        # dispatchers run
        def meeting(title):
            start = (datetime.now() + timedelta(days=1)).replace(hour=9, minute=0)
            resp = r.call("members", other, "POST", "/api/v1/meetings", json={
                "kind": "plenary", "title": title, "place": "县政协会议室",
                "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
                "ends_on": start.date().isoformat(), "invite": {"all": True}})
            assert resp.status_code == 201, resp.text

        def mails(title):
            return [m for m in r.smtp.messages() if title in m.get("body", "")]
        meeting("第一次全体会议")
        first = wait_until(lambda: (lambda m: m if len(m) >= 40 else None)(
            mails("第一次全体会议")), timeout=120, what="the first notice to every member")
        assert sorted(m["to"] for m in first) == sorted(set(m["to"] for m in first))

        # under load, the relaying replica is killed: the other takes over
        before = r.lease("members", "outbox")
        load = threading.Thread(target=patch_all, args=(r, other, ids, 2))
        load.start()
        wait_until(lambda: len(tap.drain()) >= len(wanted) + 10, timeout=60,
                   what="the load under way")
        r.kill("members", relay)
        dead = r.lease("members", "outbox")   # the killed holder's last renewal
        assert dead["token"] == before["token"]
        load.join(timeout=120)
        after = wait_until(lambda: (lambda d: d if d["token"] > before["token"] else None)(
            r.lease("members", "outbox")), timeout=LEASE_SECONDS * 10,
            what="the lease taken over")
        assert r.holder("members", "outbox") == other
        # the new holder took it only once the old one's lease had run out
        # (lease times are the replicas' wall clocks, ISO 8601 UTC)
        acquired = datetime.fromisoformat(after["expires_at"]) - timedelta(seconds=LEASE_SECONDS)
        expired = datetime.fromisoformat(dead["expires_at"])
        assert acquired >= expired
        print(f"\nthe relay's lease taken over {(acquired - expired).total_seconds():.1f} s "
              f"after the killed holder's expired (lease {LEASE_SECONDS} s)")
        wanted = expected_events(r)
        wait_until(lambda: {(a, s) for _, a, s in tap.drain()} >= wanted, timeout=120,
                   what="every event after the takeover")
        assert in_order(tap.seen), "an aggregate's events arrived out of order"
        doubled = len(tap.seen) - len({e for e, _, _ in tap.seen})
        assert doubled <= 200, "more repeated than the one batch in flight at the kill"
        print(f"\n{len(wanted)} events, {doubled} published again after the kill "
              "(the batch in flight; consumers' inboxes drop them)")

        # the dispatcher's replica is killed too: the next notice still goes
        # to every member once
        dispatcher = r.holder("notify", "dispatch")
        r.kill("notify", dispatcher)
        meeting("第二次全体会议")
        second = wait_until(lambda: (lambda m: m if len(m) >= 40 else None)(
            mails("第二次全体会议")), timeout=120, what="the second notice after the takeover")
        assert len(second) == len(set(m["to"] for m in second)) == len(first)
        assert r.holder("notify", "dispatch") == ("b" if dispatcher == "a" else "a")
    finally:
        tap.close()
