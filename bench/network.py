"""A simulated province's network on this machine: the city (with the
provincial platform's simulator) and N counties, each a whole platform with
its own broker and database, linked to the city over federation.

The counties are brought up in steps (``--steps``, e.g. 2, 5 and 10); at
each step, once idle, the resident memory of every platform is summed, and
the memory per added county is the slope of a straight line fitted through
those points. Then each county gets a roster (``--roster`` members, whose
copies go to the city) and, for ``--seconds``, the work of a year compressed
into that time: 社情民意 items written by members and reported to the city
(``--opinions-per-year``), roster changes (``--roster-changes-per-year``),
and a plenary burst at the first county (``--burst`` proposals in
``--burst-seconds``).

It prints per county the linked-event lag at the city (the county's write
→ the event on the city's broker, through outbox, relay and federation),
p50/p99, and the same at the county's own broker before the link, beside
the raw federation hop on the same brokers; county →
province for a sample of the items (every ``--to-province-every``th, which the
bench, acting as the city office, reports on to the provincial simulator as
soon as it is at the city), and the adapter's part of it; the city
broker's and the whole machine's CPU; and, at the end, what the city holds
against what each county sent: nothing lost, nothing doubled.

Every loop is bounded in count and time; every platform is stopped at the
end.

    .venv/bin/python bench/network.py [--counties 10] [--steps 2,5,10] [--seconds 300]
                                      [--per-service]
"""
import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counties", type=int, default=10)
    parser.add_argument("--steps", default="2,5,10", help="county counts to measure memory at")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--roster", type=int, default=40)
    parser.add_argument("--opinions-per-year", type=int, default=120)
    parser.add_argument("--roster-changes-per-year", type=int, default=40)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--burst-seconds", type=float, default=20)
    parser.add_argument("--settle-seconds", type=float, default=20)
    parser.add_argument("--to-province-every", type=int, default=10,
                        help="every Nth 社情民意 item of a county is reported on to the "
                             "province by the city office as soon as it arrives")
    parser.add_argument("--per-service", action="store_true",
                        help="one process per service on every platform (default: each "
                             "platform's services in one process, as `make up` runs them)")
    args = parser.parse_args()
    steps = sorted({int(s) for s in args.steps.split(",") if s} | {args.counties})
    if steps[-1] > args.counties:
        sys.exit("--steps beyond --counties")
    os.environ["ZHZX_RUN_DIR"] = tempfile.mkdtemp(prefix="zhzx-bench-network-")
    from deploy import local
    from tests.support import free_shift
    names = local.define_network(args.counties)
    os.environ["ZHZX_PORT_SHIFT"] = str(free_shift(3900))
    started = []
    try:
        run(args, steps, names, started)
    finally:
        for name in reversed(started):
            try:
                local.down(name, out=lambda *_: None)
            except local.LaunchError as exc:
                print(f"stopping {name}: {exc}")
        local.stop_idle_epmd()


def platform_memory(local, names):
    from deploy import supervise
    return sum(supervise.status(name)["rss_bytes"] or 0 for name in names)


def fit(points):
    """Least squares ``y = a + b x`` through ``points``."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - b * mx, b


class Tap:
    """The bench's own queue on a broker's ``zhzx.up`` (the city's, or a
    county's before the link), bound like the city's services: when each
    linked event arrives, by its origin. It consumes in a process of its
    own, so that its timestamps never wait for the interpreter lock of the
    bench's hundred-odd threads."""

    def __init__(self, amqp_uri, city_org, name="bench.network.tap"):
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")
        self.stop, self.ready = ctx.Event(), ctx.Event()
        self._arrivals = ctx.Queue()
        self._process = ctx.Process(target=_tap, daemon=True, args=(
            amqp_uri, city_org, name, self.stop, self.ready, self._arrivals))
        self._since = 0.0
        self.lags = defaultdict(list)        # origin -> seconds
        self.ids = defaultdict(int)          # event id -> times received

    def start(self):
        self._process.start()

    def clear(self):
        """Lags count from now on (arrivals still count for doubles)."""
        self._since = time.time()

    def finish(self):
        self.stop.set()
        for origin, event_id, at, lag in self._arrivals.get(timeout=120):
            self.ids[event_id] += 1
            if at >= self._since:
                self.lags[origin].append(lag)
        self._process.join(timeout=30)


def _tap(amqp_uri, city_org, name, stop, ready, out):
    """The tap's process: every linked event's (origin, id, arrival, lag),
    sent to the bench once ``stop`` is set."""
    from kombu import Exchange, Queue
    from bench.local_infra import consume
    queue = Queue(name, Exchange("zhzx.up", type="topic", durable=True),
                  routing_key=f"{city_org}.#", auto_delete=True)
    arrivals = []

    def on_message(body, message):
        message.ack()
        if not isinstance(body, dict) or "occurred_at" not in body:
            return   # the raw hop's messages, measured on their own
        now = datetime.now(timezone.utc)
        occurred = datetime.fromisoformat(body["occurred_at"].replace("Z", "+00:00"))
        arrivals.append((body["origin"], body["event_id"], now.timestamp(),
                         (now - occurred).total_seconds()))

    consume(amqp_uri, [queue], on_message, stop, ready)
    out.put(arrivals)


def raw_hop(county_uri, city_uri, city_org, count=200):
    """The raw federation hop in the same network: a message published on a
    county broker's ``zhzx.up`` → received on the city broker, no services."""
    from kombu import Connection, Exchange, Producer, Queue
    up = Exchange("zhzx.up", type="topic", durable=True)
    queue = Queue("bench.network.raw", up, routing_key=f"{city_org}.bench.raw", auto_delete=True)
    seen = {}
    with Connection(city_uri) as city, Connection(county_uri) as county:
        def on_message(body, message):
            seen[body["n"]] = time.perf_counter() - body["sent"]
            message.ack()
        with city.Consumer([queue], callbacks=[on_message]):
            producer = Producer(county.channel())
            deadline = time.monotonic() + 120
            # the binding reaches the county's side of the federation first
            while not seen and time.monotonic() < deadline:
                producer.publish({"n": -1, "sent": time.perf_counter()}, exchange=up,
                                 routing_key=f"{city_org}.bench.raw", serializer="json")
                try:
                    city.drain_events(timeout=1)
                except TimeoutError:
                    pass
            seen.clear()
            for n in range(count):
                producer.publish({"n": n, "sent": time.perf_counter()}, exchange=up,
                                 routing_key=f"{city_org}.bench.raw", serializer="json")
                while n not in seen and time.monotonic() < deadline:
                    try:
                        city.drain_events(timeout=1)
                    except TimeoutError:
                        pass
    return list(seen.values())


def run(args, steps, names, started):
    import httpx
    import pymongo
    from bench.local_infra import percentile
    from deploy import local
    from deploy.cli import _link_refs
    from deploy.demo_data import members as demo
    from services.common import federation
    from services.common.auth import issue_token

    def token(name, role):
        return issue_token(local.own_secrets(name)["JWT_SECRET"],
                           org=local.PLATFORMS[name]["ORG_CODE"], roles=[role], sub=role)

    def cpu(part_pids):
        return sum(local.process_cpu(pid) or 0 for pid in part_pids)

    quiet = lambda *_: None  # noqa: E731
    t0 = time.monotonic()
    one_process = not args.per_service
    print("services: " + ("in one process per platform" if one_process else
                          "one process each"))
    local.up("city", demo=False, one_process=one_process, out=quiet)
    started.append("city")
    print(f"city up in {time.monotonic() - t0:.0f} s")
    memory = []
    for name in names:
        t = time.monotonic()
        local.up(name, demo=False, one_process=one_process, out=quiet)
        started.append(name)
        refs = _link_refs(argparse.Namespace(county=name, city="city", county_mgmt=None))
        local.register_link_keys(name, "city")   # before the link (see zhzx link)
        federation.link(refs[0], refs[1], county_org=refs[2], city_org=refs[3])
        counties = len(started) - 1
        print(f"county {local.PLATFORMS[name]['ORG_CODE']} {local.PLATFORMS[name]['ORG_NAME']}"
              f" up and linked in {time.monotonic() - t:.0f} s ({counties} counties)")
        if counties in steps:
            time.sleep(args.settle_seconds)   # idle: start-up work done
            memory.append((counties, platform_memory(local, started)))
            print(f"  memory of the network with {counties} counties: "
                  f"{memory[-1][1] / 2 ** 20:.0f} MB")
    counties = names
    orgs = {name: local.PLATFORMS[name]["ORG_CODE"] for name in counties}
    city_org = local.PLATFORMS["city"]["ORG_CODE"]
    city_broker = local.platform_parts("city")[1]
    city_uri = city_broker.uri_for(*local.broker_admin("city"))
    tap = Tap(city_uri, city_org)
    # the same on each county's own broker, before the link: the lag there is
    # the county's outbox and relay alone
    at_county = {name: Tap(local.platform_parts(name)[1].uri_for(*local.broker_admin(name)),
                           city_org, name="bench.network.tap.county") for name in counties}
    taps = [tap, *at_county.values()]
    for t in taps:
        t.start()
    for t in taps:
        t.ready.wait(30)

    # each county's roster, whose copies go to the city
    rosters = {}
    with httpx.Client(timeout=120) as client:
        for name in counties:
            rows = demo.members(args.roster, seed=int(orgs[name]))
            resp = client.post(local.service_url(name, "members", "/api/v1/members/import"),
                               content=demo.roster_csv(rows),
                               headers={"Authorization": f"Bearer {token(name, 'admin')}",
                                        "Content-Type": "text/csv"})
            resp.raise_for_status()
            rosters[name] = [m["id"] for m in client.get(
                local.service_url(name, "members", f"/api/v1/members?limit={args.roster}"),
                headers={"Authorization": f"Bearer {token(name, 'admin')}"}).json()["items"]]
    mongo = pymongo.MongoClient(f"mongodb://127.0.0.1:{local.platform_spec('city')['mongo']}/")
    linked = mongo["zhzx_members"]["linked_members"]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and linked.count_documents({}) < args.roster * len(counties):
        time.sleep(1)
    print(f"rosters: {linked.count_documents({})} of {args.roster * len(counties)} "
          "memberships copied to the city")
    for t in taps:
        t.clear()

    # a year's work compressed into --seconds
    from deploy import supervise
    city_parts = {row["part"]: row["pid"] for row in supervise.status("city")["parts"]}
    all_pids = [row["pid"] for name in started for row in supervise.status(name)["parts"]
                if row["pid"]]
    cpu_city_broker, cpu_all = cpu([city_parts["broker"]]), cpu(all_pids)
    reported, changed, errors = defaultdict(int), defaultdict(int), []
    onward = {}   # city id of a sampled item → when the county reported it, when the city did
    offices = []
    lock = threading.Lock()

    def county_work(name, rng):
        client = httpx.Client(timeout=30)
        admin = {"Authorization": f"Bearer {token(name, 'admin')}"}
        url = lambda service, path: local.service_url(name, service, path)  # noqa: E731
        ops = ([("opinion", args.opinions_per_year), ("roster", args.roster_changes_per_year)])
        schedule = sorted((rng.uniform(0, args.seconds), kind) for kind, per_year in ops
                          for _ in range(per_year))
        began = time.monotonic()
        for at, kind in schedule:
            time.sleep(max(0.0, began + at - time.monotonic()))
            try:
                if kind == "opinion":
                    author = rng.choice(rosters[name])
                    resp = client.post(url("liaison", "/api/v1/opinions"), json={
                        "title": "关于加强农村饮水安全保障的建议", "content": "建议……"},
                        headers={"Authorization": f"Bearer {token(name, f'member:{author}')}"})
                    resp.raise_for_status()
                    oid = resp.json()["id"]
                    for action, data in (("accept", {}), ("issue", {}),
                                         ("report", {"level": "city"})):
                        client.post(url("liaison", f"/api/v1/opinions/{oid}/actions/{action}"),
                                    json=data, headers=admin).raise_for_status()
                    with lock:
                        reported[name] += 1
                        sampled = reported[name] % args.to_province_every == 0
                        if sampled:
                            onward[f"{orgs[name]}-{oid}"] = {"county_ms": time.time() * 1000}
                    if sampled:
                        office = threading.Thread(target=city_office, args=(
                            f"{orgs[name]}-{oid}", time.monotonic() + 300), daemon=True)
                        office.start()
                        offices.append(office)
                else:
                    member = rng.choice(rosters[name])
                    client.patch(url("members", f"/api/v1/members/{member}"), json={
                        "committees": [rng.choice(["提案委", "经济委", "社会法制委"])]},
                        headers=admin).raise_for_status()
                    with lock:
                        changed[name] += 1
            except httpx.HTTPError as exc:
                with lock:
                    errors.append(f"{name} {kind}: {exc}")
        client.close()

    def burst(name):
        client = httpx.Client(timeout=30)
        time.sleep(args.seconds / 3)
        began = time.monotonic()
        for i in range(args.burst):
            time.sleep(max(0.0, began + i * args.burst_seconds / args.burst - time.monotonic()))
            lead = rosters[name][i % len(rosters[name])]
            member = {"Authorization": f"Bearer {token(name, f'member:{lead}')}"}
            try:
                resp = client.post(local.service_url(name, "proposals", "/api/v1/proposals"),
                                   json={"kind": "member", "type": "interim",
                                         "title": "关于推进县域医共体建设的建议",
                                         "situation": "……", "analysis": "……",
                                         "suggestions": "……", "category": "livelihood"},
                                   headers=member)
                resp.raise_for_status()
                client.post(local.service_url(
                    name, "proposals", f"/api/v1/proposals/{resp.json()['id']}/actions/submit"),
                    json={}, headers=member).raise_for_status()
            except httpx.HTTPError as exc:
                with lock:
                    errors.append(f"{name} burst: {exc}")
        client.close()

    def city_office(item, until):
        """Reports a sampled item on to the province once it is at the city,
        as an office that acts at once would (accept, issue, report): one
        such office per item, so that no item waits for another's."""
        client = httpx.Client(timeout=30)
        admin = {"Authorization": f"Bearer {token('city', 'admin')}"}
        url = lambda path: local.service_url("city", "liaison", path)  # noqa: E731
        try:
            while time.monotonic() < until:
                resp = client.get(url(f"/api/v1/opinions/{item}"), headers=admin)
                if resp.status_code != 404:
                    break
                time.sleep(0.1)   # polling the city's intake, as an office's screen would
            resp.raise_for_status()
            steps = [("report", {"level": "province"})]
            if resp.json()["state"] == "submitted":
                steps = [("accept", {}), ("issue", {})] + steps
            for action, data in steps:
                client.post(url(f"/api/v1/opinions/{item}/actions/{action}"),
                            json=data, headers=admin).raise_for_status()
            with lock:
                onward[item]["city_ms"] = time.time() * 1000
        except httpx.HTTPError as exc:
            with lock:
                errors.append(f"city office {item}: {exc}")
        finally:
            client.close()

    began = time.monotonic()
    workers = [threading.Thread(target=county_work, args=(name, random.Random(orgs[name])))
               for name in counties] + [threading.Thread(target=burst, args=(counties[0],))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(args.seconds + 300)
    for office in list(offices):
        office.join(330)
    elapsed = time.monotonic() - began
    cpu_city_broker = (cpu([city_parts["broker"]]) - cpu_city_broker) / elapsed
    cpu_all = (cpu(all_pids) - cpu_all) / elapsed

    # what the city holds against what was sent
    opinions = mongo["zhzx_liaison"]["opinions"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and opinions.count_documents(
            {"source.org": {"$in": list(orgs.values())}}) < sum(reported.values()):
        time.sleep(1)
    sim = local.parts("city")["province"]
    sent = {i for i, t in onward.items() if t.get("city_ms")}
    deadline = time.monotonic() + 300
    at_province = {}
    while time.monotonic() < deadline:
        at_province = {r["local_id"]: r["received_ms"]
                       for r in sim.admin("GET", "records?kind=opinions")["items"]}
        if sent <= set(at_province):
            break
        time.sleep(1)
    to_province = [(at_province[i] - onward[i]["county_ms"]) / 1000 for i in sent
                   if i in at_province]
    adapter_hop = [(at_province[i] - onward[i]["city_ms"]) / 1000 for i in sent
                   if i in at_province]
    county_uri = local.platform_parts(counties[-1])[1].uri_for(
        *local.broker_admin(counties[-1]))
    raw = raw_hop(county_uri, city_uri, city_org)
    for t in taps:
        t.finish()

    def ms(values, q):
        return f"{percentile(values, q) * 1000:7.1f}" if values else "      -"

    print(f"\n{len(counties)} counties for {elapsed:.0f} s (a year's work each: "
          f"{args.opinions_per_year} 社情民意 items, {args.roster_changes_per_year} roster "
          f"changes; a plenary burst of {args.burst} proposals at {orgs[counties[0]]})")
    print("county   items  city has  roster changes  lag at the city p50 / p99 ms  "
          "(at the county's broker)")
    lost = 0
    for name in counties:
        org = orgs[name]
        has = opinions.count_documents({"source.org": org})
        lost += abs(has - reported[name])
        copies = linked.count_documents({"org": org})
        lost += abs(copies - args.roster)
        print(f"{org}  {reported[name]:6d}  {has:8d}  {changed[name]:14d}   "
              f"{ms(tap.lags[org], 50)} / {ms(tap.lags[org], 99)}   "
              f"({ms(at_county[name].lags[org], 50)} / {ms(at_county[name].lags[org], 99)})  "
              f"(roster copies at the city {copies}/{args.roster})")
    everything = [v for values in tap.lags.values() for v in values]
    print(f"all      {sum(reported.values()):6d}  "
          f"{opinions.count_documents({'source.org': {'$in': list(orgs.values())}}):8d}  "
          f"{sum(changed.values()):14d}   {ms(everything, 50)} / {ms(everything, 99)}")
    print(f"raw federation hop, same brokers: p50 {ms(raw, 50)} ms, p99 {ms(raw, 99)} ms "
          f"({len(raw)} messages)")
    print(f"county → province, 1 item in {args.to_province_every} reported on by the city "
          f"office at once: {len(to_province)} of {len(sent)} at the province; "
          f"p50 {ms(to_province, 50)} ms, p99 {ms(to_province, 99)} ms; of which the city's "
          f"report → the province's record (adapter): p50 {ms(adapter_hop, 50)} ms, "
          f"p99 {ms(adapter_hop, 99)} ms")
    twice = sim.admin("GET", "stats").get("same_item_twice", 0)
    print(f"items the province received twice: {twice}")
    lost += len(sent) - len(to_province) + twice
    print(f"linked events received at the city more than once: "
          f"{sum(1 for n in tap.ids.values() if n > 1)} of {len(tap.ids)}")
    print(f"lost or doubled at the city: {lost}")
    print(f"CPU: city broker {cpu_city_broker:.0%} of a core; every platform together "
          f"{cpu_all:.0%} (2 cores = 200 %)")
    if len(memory) >= 2:
        a, b = fit(memory)
        print("memory: " + ", ".join(f"{n} counties {m / 2 ** 20:.0f} MB" for n, m in memory)
              + f"; fit: {a / 2 ** 20:.0f} MB + {b / 2 ** 20:.0f} MB per county")
    print(f"errors: {len(errors)}")
    for error in errors[:10]:
        print(f"  {error}")
    print(json.dumps({"memory": memory}))


if __name__ == "__main__":
    main()
