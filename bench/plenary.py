"""The plenary (大会) burst on a county platform with its demo roster.

Starts the county (`zhzx up`, demo loaded, in a run directory and on ports of
its own), lets it settle, then within ``--seconds`` (60):

- the office schedules the plenary three days ahead, so its notice goes to
  every member at once (inbox and e-mail);
- ``--proposals`` (500) proposals are drafted and submitted by members over
  the HTTP API from ``--clients`` (16) concurrent clients, each with one or
  two co-signers, who receive the invitation in their inbox and confirm a
  few seconds later.

It prints HTTP p50/p99 per endpoint, submit → the co-signer's inbox
notification p50/p99, the whole pipeline (the write → the event applied by
each of two consumers: notify's inbox and members' 履职档案), the meeting notice's fan-out, the outbox backlog's
peak and the time to drain it after the burst, and the errors; each beside
the same measure on the idle platform just before the burst (the baseline).
Every loop is bounded in count and time; the platform is stopped at the end.

    .venv/bin/python bench/plenary.py [--proposals 500] [--seconds 60] [--per-service]

The services run in one process, as `make up` runs them; ``--per-service``
gives one process per service instead.
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import pymongo  # noqa: E402

from bench.local_infra import consume, percentile  # noqa: E402
from tests.support import free_shift  # noqa: E402

PLATFORM = "county"
SERVICES = ("members", "proposals", "liaison", "notify")
COSIGN_RULE, NOTICE_RULE = "proposal-cosign", "meeting-notice"
RECORD_CONSUMER = "members.record"   # services/members/entrypoints.py
TOPICS = ["关于加强农村学校教师队伍建设的建议", "关于推进县域医共体建设的建议",
          "关于加快农村供水管网改造的建议", "关于促进特色农产品品牌建设的建议",
          "关于完善城乡居民养老服务体系的建议", "关于加强历史文化街区保护的建议"]


class Recorder:
    """HTTP timings per endpoint, and the errors."""

    def __init__(self):
        self.lock = threading.Lock()
        self.times = defaultdict(list)
        self.errors = []

    def call(self, client, endpoint, method, url, **kwargs):
        started = time.perf_counter()
        try:
            resp = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            with self.lock:
                self.errors.append(f"{endpoint}: {type(exc).__name__}")
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.times[endpoint].append(elapsed)
            if resp.status_code >= 400:
                self.errors.append(f"{endpoint}: {resp.status_code} {resp.text[:200]}")
        return resp if resp.status_code < 400 else None


class Watcher(threading.Thread):
    """When each expected notification first appears in the notify database.

    The bench's own queue receives the events that cause them (the co-sign
    invitation, the meeting notice), which gives each notification's id
    (``notification_id``); only those not seen yet are looked up, by id,
    every ``every`` s (the figures are upper bounds by that much). The outbox
    backlog is sampled every ``backlog_every`` s."""

    def __init__(self, amqp_uri, db, members_db, outboxes, every=0.05, backlog_every=0.25):
        super().__init__(daemon=True)
        self.amqp_uri, self.db, self.outboxes = amqp_uri, db, outboxes
        self.members_db = members_db
        self.occurred = {}        # (rule, aggregate_id, recipient) -> the event's occurred_at
        self.records = {}         # members' inbox claim of a proposal.submitted -> occurred_at
        self.applied = {}         # that claim -> time.time() it was seen done
        self.every, self.backlog_every = every, backlog_every
        self.expected = {}        # notification id -> (rule, aggregate_id, recipient)
        self.seen = {}            # (rule, aggregate_id, recipient) -> time.time()
        self.backlog = []         # (time.time(), events waiting in outboxes)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ready = threading.Event()

    def tap(self):
        from kombu import Exchange, Queue
        from services.notify.rules import notification_id
        queues = [Queue("bench.plenary.cosign", Exchange("proposals.events", type="topic",
                                                         durable=True),
                        routing_key="proposal.cosign_requested", auto_delete=True),
                  Queue("bench.plenary.notice", Exchange("members.events", type="topic",
                                                         durable=True),
                        routing_key="meeting.notice_due", auto_delete=True),
                  Queue("bench.plenary.submitted", Exchange("proposals.events", type="topic",
                                                            durable=True),
                        routing_key="proposal.submitted", auto_delete=True)]

        def on_event(body, message):
            occurred = datetime.fromisoformat(body["occurred_at"].replace("Z", "+00:00"))
            if body["type"] == "proposal.submitted":   # applied by members' 履职档案
                with self.lock:
                    self.records[f"{RECORD_CONSUMER}:{body['event_id']}"] = occurred.timestamp()
                message.ack()
                return
            payload = body.get("payload") or {}
            rule, people = ((COSIGN_RULE, payload.get("invited")) if body["type"].startswith(
                "proposal.") else (NOTICE_RULE, payload.get("invitees")))
            with self.lock:
                for person in people or ():
                    recipient = f"member:{person}"
                    key = (rule, body["aggregate_id"], recipient)
                    self.expected[notification_id(body["event_id"], rule, recipient)] = key
                    self.occurred[key] = occurred.timestamp()
            message.ack()

        consume(self.amqp_uri, queues, on_event, self.stop, self.ready)

    def run(self):
        threading.Thread(target=self.tap, daemon=True).start()
        self.ready.wait(30)
        sampled = 0.0
        deadline = time.monotonic() + 1800
        while not self.stop.is_set() and time.monotonic() < deadline:
            now = time.time()
            with self.lock:
                outstanding = [i for i in self.expected if self.expected[i] not in self.seen]
            for start in range(0, len(outstanding), 200):
                for n in self.db["notifications"].find(
                        {"_id": {"$in": outstanding[start:start + 200]}}, {"_id": 1}):
                    self.seen[self.expected[n["_id"]]] = now
            with self.lock:
                claims = [k for k in self.records if k not in self.applied]
            for start in range(0, len(claims), 200):
                for c in self.members_db["inbox"].find(
                        {"_id": {"$in": claims[start:start + 200]}, "state": "done"}, {"_id": 1}):
                    self.applied[c["_id"]] = now
            if now - sampled >= self.backlog_every:
                sampled = now
                self.backlog.append((now, waiting(self.outboxes)))
            self.stop.wait(self.every)


def waiting(outboxes):
    """Events waiting in the given outbox collections, local ones only (a
    county's events for its city wait for a link this run does not make)."""
    total = 0
    for collection in outboxes:
        for doc in collection.find({"_pending": 1}, {"_outbox": 1}):
            total += sum(1 for e in (doc.get("_outbox") or {}).values() if "link" not in e)
    return total


def bounded_wait(condition, limit_s, every=0.1):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return False


def ms(seconds):
    return f"{seconds * 1000:7.1f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--baseline", type=int, default=10, help="idle submits before the burst")
    parser.add_argument("--per-service", action="store_true",
                        help="one process per service (default: the services in one process, "
                             "as `make up` runs them)")
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="zhzx-bench-plenary-"))
    os.environ.update(ZHZX_RUN_DIR=str(run_dir), ZHZX_PORT_SHIFT=str(free_shift(3600)))
    zhzx = [str(Path(sys.executable).parent / "zhzx")]
    shape = [] if args.per_service else ["--one-process"]
    up = subprocess.run(zhzx + ["up", "--platform", PLATFORM, *shape], cwd=ROOT, capture_output=True,
                        text=True, timeout=900)
    if up.returncode:
        sys.exit(up.stdout + up.stderr)
    try:
        run(args, run_dir)
    finally:
        subprocess.run(zhzx + ["down", "--platform", PLATFORM], cwd=ROOT, capture_output=True,
                       timeout=300)


def run(args, run_dir):
    from deploy import local
    local.RUN = run_dir   # imported before the environment named it
    from deploy.demo import member_ids
    from services.common.auth import issue_token
    org = local.PLATFORMS[PLATFORM]["ORG_CODE"]
    secret = local.own_secrets(PLATFORM)["JWT_SECRET"]

    def token(role):
        return issue_token(secret, org=org, roles=[role], sub=role)

    def url(service, path):
        return local.service_url(PLATFORM, service, path)

    mongo = pymongo.MongoClient(f"mongodb://127.0.0.1:{local.platform_spec(PLATFORM)['mongo']}/")
    outboxes = [mongo["zhzx_members"]["members"], mongo["zhzx_members"]["meetings"],
                mongo["zhzx_proposals"]["proposals"]]
    roster = member_ids(PLATFORM, token("admin"))
    rng = random.Random(20270301)
    recorder, idle = Recorder(), Recorder()
    # the demo's own work settles first: events out, e-mails sent
    deliveries = mongo["zhzx_notify"]["deliveries"]
    if not bounded_wait(lambda: waiting(outboxes) == 0 and deliveries.count_documents(
            {"state": {"$in": ["pending", "sending"]}}) == 0, 300, 0.5):
        sys.exit("the demo platform did not settle within 300 s")
    admin_user, admin_password = local.broker_admin(PLATFORM)
    watcher = Watcher(local.platform_parts(PLATFORM)[1].uri_for(admin_user, admin_password),
                      mongo["zhzx_notify"], mongo["zhzx_members"], outboxes)
    watcher.start()
    watcher.ready.wait(30)

    def propose(rec, client, lead, cosigners, submitted):
        member = {"Authorization": f"Bearer {token(f'member:{lead}')}"}
        body = {"kind": "member", "type": "interim", "title": rng.choice(TOPICS),
                "situation": "群众反映强烈，亟需解决。", "analysis": "投入不足，机制不健全。",
                "suggestions": "一是加大投入；二是完善机制；三是强化督查。",
                "category": "livelihood", "cosigners": cosigners}
        resp = rec.call(client, "POST /proposals (draft)", "POST",
                        url("proposals", "/api/v1/proposals"), json=body, headers=member)
        if resp is None:
            return
        pid = resp.json()["id"]
        resp = rec.call(client, "POST …/actions/submit", "POST",
                        url("proposals", f"/api/v1/proposals/{pid}/actions/submit"), json={},
                        headers=member)
        if resp is not None:
            submitted.append((pid, cosigners, time.time()))

    def confirm(rec, client, pid, cosigner):
        rec.call(client, "POST …/actions/confirm_cosign", "POST",
                 url("proposals", f"/api/v1/proposals/{pid}/actions/confirm_cosign"), json={},
                 headers={"Authorization": f"Bearer {token(f'member:{cosigner}')}"})

    def pick():
        lead, *cosigners = rng.sample(roster, rng.choice((2, 3)))
        return lead, cosigners

    # the baseline: the same calls one at a time on the idle platform
    idle_submitted = []
    with httpx.Client(timeout=30) as client:
        for _ in range(args.baseline):
            lead, cosigners = pick()
            propose(idle, client, lead, cosigners, idle_submitted)
            bounded_wait(lambda: all((COSIGN_RULE, idle_submitted[-1][0], f"member:{c}")
                                     in watcher.seen for c in idle_submitted[-1][1]), 30, 0.01)
        for pid, cosigners, _ in idle_submitted:
            for c in cosigners:
                confirm(idle, client, pid, c)
        for _ in range(20):
            idle.call(client, "GET /proposals (list)", "GET",
                      url("proposals", "/api/v1/proposals?limit=20"),
                      headers={"Authorization": f"Bearer {token('admin')}"})
    bounded_wait(lambda: waiting(outboxes) == 0, 60)

    # the burst
    plan = [pick() for _ in range(args.proposals)]
    submitted, local_state = [], threading.local()

    def client():
        if not hasattr(local_state, "client"):
            local_state.client = httpx.Client(timeout=30)
        return local_state.client

    from deploy import supervise
    parts = {row["part"]: row["pid"] for row in supervise.status(PLATFORM)["parts"]
             if row["pid"]}
    cpu_before = {part: local.process_cpu(pid) or 0 for part, pid in parts.items()}
    started = time.time()
    # members drafting and submitting, and co-signers answering, are separate
    # people: separate pools of clients
    with ThreadPoolExecutor(args.clients) as pool, ThreadPoolExecutor(args.clients) as answers:
        starts_at = (datetime.now() + timedelta(days=3)).replace(hour=9, minute=0, second=0)
        notice_at = time.time()
        meeting = recorder.call(
            httpx.Client(timeout=30), "POST /meetings", "POST", url("members", "/api/v1/meetings"),
            headers={"Authorization": f"Bearer {token('admin')}"},
            json={"kind": "plenary", "title": "政协第十届委员会第六次全体会议",
                  "place": "县会议中心", "starts_at": starts_at.isoformat(timespec="minutes"),
                  "ends_on": (starts_at + timedelta(days=2)).date().isoformat(),
                  "invite": {"all": True}})
        meeting_id = meeting.json()["id"] if meeting is not None else None
        futures = []
        for i, (lead, cosigners) in enumerate(plan):
            due = started + i * args.seconds / args.proposals

            def one(due=due, lead=lead, cosigners=cosigners):
                time.sleep(max(0.0, due - time.time()))
                propose(recorder, client(), lead, cosigners, submitted)
            futures.append(pool.submit(one))
        # co-signers confirm 2-5 s after the invitation
        confirmed = 0
        deadline = time.monotonic() + args.seconds + 120
        while time.monotonic() < deadline:
            while confirmed < len(submitted) and \
                    time.time() >= submitted[confirmed][2] + 2 + confirmed % 4:
                pid, cosigners, _ = submitted[confirmed]
                for c in cosigners:
                    answers.submit(lambda p=pid, c=c: confirm(recorder, client(), p, c))
                confirmed += 1
            if all(f.done() for f in futures) and confirmed >= len(submitted):
                break
            time.sleep(0.05)
    ended = time.time()
    drained = bounded_wait(lambda: waiting(outboxes) == 0, 120, 0.05)
    drained_at = time.time()
    cpu = {part: (local.process_cpu(pid) or 0) - cpu_before[part] for part, pid in parts.items()}
    wanted = [(COSIGN_RULE, pid, f"member:{c}") for pid, cs, _ in submitted for c in cs]
    bounded_wait(lambda: all(k in watcher.seen for k in wanted), 60)
    bounded_wait(lambda: all(k in watcher.applied for k in list(watcher.records)), 60)
    noticed = [t for (rule, agg, _), t in watcher.seen.items()
               if rule == NOTICE_RULE and agg == meeting_id]
    watcher.stop.set()
    watcher.join(5)

    def latencies(subs):
        return [watcher.seen[(COSIGN_RULE, pid, f"member:{c}")] - at
                for pid, cs, at in subs for c in cs
                if (COSIGN_RULE, pid, f"member:{c}") in watcher.seen]

    # the pipeline, by consumer: the write (occurred_at) → applied
    to_inbox = [t - watcher.occurred[k] for k, t in watcher.seen.items()
                if k[0] == COSIGN_RULE and k in watcher.occurred
                and started <= watcher.occurred[k] <= ended]
    to_record = [t - watcher.records[k] for k, t in watcher.applied.items()
                 if started <= watcher.records[k] <= ended]
    burst = latencies(submitted)
    base = latencies(idle_submitted)
    peak = max((b for t, b in watcher.backlog if started <= t <= ended), default=0)
    print(f"plenary burst on the {PLATFORM} platform "
          f"({'one process per service' if args.per_service else 'services in one process'}): "
          f"{len(roster)} members, "
          f"{len(plan)} proposals in {args.seconds:.0f} s from {args.clients} clients "
          f"(took {ended - started:.1f} s)")
    print("HTTP, per endpoint          burst n   p50        p99      | idle n   p50        p99")
    for endpoint in sorted(recorder.times):
        t, b = recorder.times[endpoint], idle.times.get(endpoint) or [0]
        print(f"  {endpoint:<32} {len(t):5d} {ms(percentile(t, 50))} {ms(percentile(t, 99))} |"
              f" {len(idle.times.get(endpoint, ())):4d} {ms(percentile(b, 50))} "
              f"{ms(percentile(b, 99))}")
    print(f"submit → co-signer's inbox   {len(burst):5d} {ms(percentile(burst or [0], 50))} "
          f"{ms(percentile(burst or [0], 99))} | {len(base):4d} {ms(percentile(base or [0], 50))}"
          f" {ms(percentile(base or [0], 99))}   (missing: {len(wanted) - len(burst)})")
    print(f"write → applied, by consumer of proposals' events during the burst: notify's "
          f"inbox p50 {ms(percentile(to_inbox or [0], 50))}, p99 "
          f"{ms(percentile(to_inbox or [0], 99))} ({len(to_inbox)}); members' 履职档案 p50 "
          f"{ms(percentile(to_record or [0], 50))}, p99 {ms(percentile(to_record or [0], 99))}"
          f" ({len(to_record)})")
    print(f"meeting notice: {len(noticed)} of {len(roster)} members' inboxes in "
          f"{(max(noticed) - notice_at) if noticed else float('nan'):.2f} s")
    print(f"outbox backlog: peak {peak} events during the burst; "
          + (f"drained {drained_at - ended:.2f} s after the burst ended" if drained
             else "NOT drained within 120 s"))
    print(f"CPU during the burst and its drain ({drained_at - started:.0f} s, 2 cores): "
          + ", ".join(f"{part} {seconds / (drained_at - started):.0%}"
                      for part, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])))
    print(f"errors: {len(recorder.errors) + len(idle.errors)}")
    for error in (idle.errors + recorder.errors)[:10]:
        print(f"  {error}")


if __name__ == "__main__":
    main()
