"""A county + city pair run as operators run it (`zhzx up --pair`, supervised,
on ports and a run directory of its own), a write load against it, and the
invariants checked after each fault.

The load is what a county office does all day: a member submits a 社情民意
item, the office accepts, issues and reports it to the city (a linked event
up the federation link); every fifth round the office also appoints a member
(a roster change rolled up to the city). A step answered 503 or not answered
is retried as a client would, for a bounded time.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import requests

from deploy.local import PLATFORMS, SERVICES
from tests.support import ROOT, free_shift, wait_until

BIN = Path(sys.executable).parent
COUNTY, CITY = "140428", "140400"
READY_BOUND_SECONDS = 90      # readiness of every service after a fault, at most
CONVERGE_SECONDS = 150        # every acknowledged item at the city, at most
RESULTS = []
_SEEDS = iter(range(70_000, 80_000))   # a new person for every appointment


class Pair:
    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.shift = free_shift(2200)
        self.env = dict(os.environ, ZHZX_RUN_DIR=str(self.run_dir),
                        ZHZX_PORT_SHIFT=str(self.shift))
        self.tokens = {}

    def zhzx(self, *args, timeout=300, check=True):
        result = subprocess.run([str(BIN / "zhzx"), *args], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"zhzx {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def up(self):
        self.zhzx("up", "--pair", "--no-demo", timeout=600)
        for name in ("county", "city"):
            self.tokens[name] = self.zhzx("token", "--platform", name, "--role",
                                          "admin").stdout.strip()

    def down(self):
        return self.zhzx("down", "--pair", timeout=300, check=False)

    def admin(self, platform):
        """The platform broker's administrator (``zhzx up`` made it)."""
        users = json.loads((self.run_dir / platform / "broker-users.json").read_text())
        return "zhzx-admin", users["admin"]

    def url(self, platform, service, path):
        base = PLATFORMS[platform]["http_base"] + SERVICES[service] + self.shift
        return f"http://127.0.0.1:{base}{path}"

    def call(self, platform, service, method, path, token=None, **kw):
        headers = dict(kw.pop("headers", {}),
                       Authorization=f"Bearer {token or self.tokens[platform]}")
        return requests.request(method, self.url(platform, service, path), headers=headers,
                                timeout=30, **kw)

    def member_token(self, member_id):
        key = f"member:{member_id}"
        if key not in self.tokens:
            self.tokens[key] = self.zhzx("token", "--role", key).stdout.strip()
        return self.tokens[key]

    def all_ready(self):
        return all(requests.get(self.url(p, s, "/readyz"), timeout=5).status_code == 200
                   for p in ("county", "city") for s in SERVICES)

    def ready(self):
        try:
            return self.all_ready()
        except requests.RequestException:
            return False

    def status(self, platform="county"):
        return json.loads(self.zhzx("status", "--platform", platform, "--json").stdout)[0]

    def pid(self, platform, part):
        return next(r["pid"] for r in self.status(platform)["parts"] if r["part"] == part)

    def restarts(self, platform, part):
        return next(r["restarts"] for r in self.status(platform)["parts"] if r["part"] == part)

    def dead_letters(self, platform):
        out = self.zhzx("dlq", "list", "--platform", platform, "--json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None


@dataclass
class Load:
    """Rounds of writes in a thread of its own until stopped (bounded)."""
    pair: Pair
    members: list
    created: list = field(default_factory=list)     # opinion ids answered 201
    reported: list = field(default_factory=list)    # reported to the city, answered 200
    appointed: list = field(default_factory=list)   # member ids answered 201
    refused: int = 0                                 # answers 503 / not answered, retried
    rounds: int = 0
    max_rounds: int = 150
    step_seconds: float = 60
    pace_seconds: float = 0.4     # a round starts at most this often (an office's pace)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=self.step_seconds * 5)
        assert not self._thread.is_alive(), "the load did not stop"

    def wait_rounds(self, n, timeout=120):
        target = self.rounds + n
        wait_until(lambda: self.rounds >= target, timeout=timeout,
                   what=f"{n} more rounds of writes")

    def step(self, attempt, applied=None):
        """``attempt()`` → response; retried on 503 or no answer. A retry of a
        request that got no answer may meet the effect of the first one (a
        process killed after its write, before its answer), and so may one
        that got a 503 (the database killed after it applied the write,
        before it replied, so the service could not know): a refusal then
        counts as done when ``applied()`` sees the effect."""
        deadline = time.monotonic() + self.step_seconds
        unanswered = False
        while time.monotonic() < deadline:
            try:
                resp = attempt()
            except requests.RequestException:
                resp = None
            if resp is not None and 400 <= resp.status_code < 500 and unanswered and applied:
                if applied():
                    return resp
            if resp is not None and resp.status_code < 500:
                assert resp.status_code < 300, (resp.status_code, resp.text)
                return resp
            unanswered = unanswered or resp is None or resp.status_code == 503
            assert resp is None or resp.status_code == 503, (resp.status_code, resp.text)
            self.refused += 1
            time.sleep(0.2)   # a client's pause before trying again
        return None

    def member_named(self, row):
        """The membership appointed for ``row`` (the same name and ID number)."""
        items = self.pair.call("county", "members", "GET", "/api/v1/members",
                               params={"name": row["name"]}).json()["items"]
        return next((m for m in items if m.get("id_number") == row["id_number"]), None)

    def _run(self):
        from deploy.demo_data import members as demo
        pair = self.pair
        while not self._stop.is_set() and self.rounds < self.max_rounds:
            started = time.monotonic()
            author = self.members[self.rounds % len(self.members)]
            token = pair.member_token(author)
            resp = self.step(lambda: pair.call("county", "liaison", "POST", "/api/v1/opinions",
                                               token=token, json={
                                                   "title": f"关于第{self.rounds + 1}条村道的建议",
                                                   "content": "建议加快修缮。"}))
            if resp is not None:
                oid = resp.json()["id"]
                self.created.append(oid)
                done = True
                for action, body, took_effect in (
                        ("accept", {}, lambda o: o["state"] != "submitted"),
                        ("issue", {}, lambda o: bool(o.get("issue"))),
                        ("report", {"level": "city"}, lambda o: "city" in o["reported"])):
                    if not self.step(lambda: pair.call(
                            "county", "liaison", "POST",
                            f"/api/v1/opinions/{oid}/actions/{action}", json=body),
                            applied=lambda: took_effect(pair.call(
                                "county", "liaison", "GET", f"/api/v1/opinions/{oid}").json())):
                        done = False
                        break
                if done:
                    self.reported.append(oid)
            if self.rounds % 5 == 4:
                person = demo.members(1, seed=next(_SEEDS))[0]
                row = {k: v for k, v in person.items() if v is not None}
                row["role"] = "member"
                resp = self.step(lambda: pair.call("county", "members", "POST",
                                                   "/api/v1/members", json=row),
                                 applied=lambda: self.member_named(row))
                if resp is not None:
                    self.appointed.append(resp.json()["id"] if resp.status_code < 300
                                          else self.member_named(row)["id"])
            self.rounds += 1
            self._stop.wait(max(0.0, self.pace_seconds - (time.monotonic() - started)))


def converge(pair, load):
    """Every item reported (answered 200) is at the city, and the city's roll-up
    of the county's roster matches the county's own count."""
    def city_ids():
        ids, cursor = [], None
        while True:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            body = pair.call("city", "liaison", "GET", "/api/v1/opinions", params=params).json()
            ids += [o["id"] for o in body["items"]]
            cursor = body.get("next_cursor")
            if not cursor:
                return ids

    wanted = {f"{COUNTY}-{oid}" for oid in load.reported}

    def arrived():
        try:
            ids = city_ids()
        except (requests.RequestException, KeyError, ValueError):
            return None
        return ids if wanted <= set(ids) else None
    return wait_until(arrived, timeout=CONVERGE_SECONDS, interval=1,
                      what="every reported item at the city")


def roster_rolled_up(pair):
    def same():
        try:
            here = pair.call("county", "members", "GET", "/api/v1/members",
                             params={"status": "active", "limit": 200}).json()["items"]
            body = pair.call("city", "members", "GET", "/api/v1/members/rollup").json()
        except (requests.RequestException, KeyError, ValueError):
            return None
        county = next((p for p in body["platforms"] if p["org"] == COUNTY), None)
        return county if county and county["active"] == len(here) else None
    return wait_until(same, timeout=CONVERGE_SECONDS, interval=1,
                      what="the county's roster rolled up at the city")


def records(pair, member_ids):
    year = time.strftime("%Y")
    return {m: pair.call("county", "members", "GET", f"/api/v1/records/{m}",
                         params={"year": year}).json()["points"] for m in member_ids}


def check(pair, load, fault, injected_at, ready_at):
    """The invariants after a fault; returns the table row."""
    city = converge(pair, load)
    for oid in load.created:   # every write answered 2xx exists
        resp = pair.call("county", "liaison", "GET", f"/api/v1/opinions/{oid}")
        assert resp.status_code == 200, (oid, resp.text)
    for member_id in load.appointed:
        resp = pair.call("county", "members", "GET", f"/api/v1/members/{member_id}")
        assert resp.status_code == 200, (member_id, resp.text)
    from_county = [i for i in city if i.startswith(f"{COUNTY}-")]
    doubled = len(from_county) - len(set(from_county))
    received = len(set(from_county) & {f"{COUNTY}-{o}" for o in load.reported})
    roster_rolled_up(pair)
    # points: every record as the events built it equals a rebuild from the
    # stored facts (an event applied twice or lost would differ)
    authors = sorted(set(load.members))
    wait_until(lambda: records(pair, authors) == records(pair, authors), timeout=30)
    before = records(pair, authors)
    rebuilt = pair.call("county", "members", "POST", "/api/v1/records/rebuild", json={})
    assert rebuilt.status_code == 200, rebuilt.text
    assert records(pair, authors) == before, "a record differs from its rebuild"
    for platform in ("county", "city"):
        letters = pair.dead_letters(platform)
        assert letters == [], f"dead letters at the {platform}: {letters}"
    row = {"fault": fault, "writes": len(load.created) * 4 + len(load.appointed),
           "sent": len(load.reported), "received": received,
           "lost": len(load.reported) - received, "doubled": doubled,
           "refused": load.refused,
           "recovery_s": round(ready_at - injected_at, 1) if ready_at else None}
    RESULTS.append(row)
    assert row["lost"] == 0 and row["doubled"] == 0, row
    return row


def table(rows):
    """The rows as a Markdown table; a fault run several times (the soak) is
    one line with its runs, the sums and the longest recovery."""
    merged = {}
    for r in rows:
        m = merged.setdefault(r["fault"], dict(r, runs=0, writes=0, sent=0, received=0,
                                                lost=0, doubled=0, refused=0, recovery_s=None))
        m["runs"] += 1
        for key in ("writes", "sent", "received", "lost", "doubled", "refused"):
            m[key] += r[key]
        if r["recovery_s"] is not None:
            m["recovery_s"] = max(m["recovery_s"] or 0, r["recovery_s"])
    head = ("fault", "runs", "writes", "linked sent", "received", "lost", "doubled",
            "503s retried", "recovery s (max)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in merged.values():
        lines.append("| " + " | ".join(str(x) for x in (
            m["fault"], m["runs"], m["writes"], m["sent"], m["received"], m["lost"],
            m["doubled"], m["refused"],
            m["recovery_s"] if m["recovery_s"] is not None else "-")) + " |")
    return lines


# --- the faults ------------------------------------------------------------------
@contextlib.contextmanager
def started_pair(run_dir):
    """`zhzx up --pair` with a small county roster; `zhzx down` afterwards."""
    from deploy.demo_data import members as demo
    pair = Pair(run_dir)
    try:
        pair.up()
        resp = pair.call("county", "members", "POST", "/api/v1/members/import",
                         headers={"Content-Type": "text/csv"},
                         data=demo.roster_csv(demo.members(6, seed=5)))
        assert resp.status_code == 200, resp.text
        items = pair.call("county", "members", "GET", "/api/v1/members",
                          params={"limit": 10}).json()["items"]
        pair.members = sorted(m["id"] for m in items)
        yield pair
    finally:
        down = pair.down()
        assert down.returncode == 0, down.stdout + down.stderr


def kill(pair, platform, part):
    """SIGKILL one part; returns its restart count before."""
    pid = pair.pid(platform, part)
    assert pid, f"{part} is not running"
    before = pair.restarts(platform, part)
    os.kill(pid, signal.SIGKILL)
    return before


def restarted(pair, platform, part, before):
    def back():
        row = next(r for r in pair.status(platform)["parts"] if r["part"] == part)
        return row["restarts"] > before and row["state"] == "running"
    wait_until(back, timeout=READY_BOUND_SECONDS, interval=0.5,
               what=f"the supervisor restarting the {platform} {part}")


def close_link_connections(pair):
    mgmt = f"http://127.0.0.1:{PLATFORMS['county']['mgmt'] + pair.shift}"

    def conns():
        return [c["name"] for c in requests.get(f"{mgmt}/api/connections",
                                                auth=pair.admin("county"), timeout=10).json()
                if c.get("user") == f"link-{CITY}"]
    for name in wait_until(conns, timeout=30, what="the link's connection"):
        requests.delete(f"{mgmt}/api/connections/{quote(name, safe='')}",
                        auth=pair.admin("county"), timeout=10)


def killed(platform, part):
    """inject, recover: SIGKILL, then the supervisor's restart."""
    state = {}
    return (lambda pair: state.update(before=kill(pair, platform, part)),
            lambda pair: restarted(pair, platform, part, state["before"]))


FAULTS = {
    "city broker stopped": (
        lambda pair: pair.zhzx("stop", "broker", "--platform", "city"),
        lambda pair: pair.zhzx("start", "broker", "--platform", "city")),
    "federation connection closed": (close_link_connections, None),
    "zhzx link re-run ×3": (lambda pair: [pair.zhzx("link") for _ in range(3)], None),
    **{f"county {service} SIGKILL": killed("county", service) for service in SERVICES
       if service != "provincial"},   # the county's adapter has no province to call
    "county broker SIGKILL": killed("county", "broker"),
    "county Mongo server SIGKILL": killed("county", "mongo"),
}


def run_fault(pair, fault):
    """A few rounds of writes, the fault, more rounds while it lasts, the
    recovery, a few rounds after it; then the invariants."""
    inject, recover = FAULTS[fault]
    load = Load(pair, pair.members).start()
    try:
        load.wait_rounds(3)
        injected = time.monotonic()
        inject(pair)
        load.wait_rounds(4, timeout=240)
        if recover:
            recover(pair)
        wait_until(pair.ready, timeout=READY_BOUND_SECONDS, interval=0.5,
                   what=f"every service ready after: {fault}")
        ready = time.monotonic()
        load.wait_rounds(3)
    finally:
        load.stop()
    return check(pair, load, fault, injected, ready)
