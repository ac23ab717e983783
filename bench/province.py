"""The provincial adapter's upward path against the provincial platform's
simulator (no injected latency): throughput and p50/p99 latency from a due
delivery to the province's record, printed beside the simulator's raw
capacity measured in the same run (signed calls straight from this process,
one at a time, as the adapter makes them); then the catch-up rate after a
provincial outage (10 minutes by default).

Starts its own broker node, Mongo wire server and simulator on free loopback
ports; every loop is bounded in count and time.

    .venv/bin/python bench/province.py [--items 1000] [--backlog 2000] [--outage-seconds 600]
"""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pymongo  # noqa: E402
import requests  # noqa: E402

from bench.local_infra import local_infra, percentile, wait  # noqa: E402
from deploy.local import ProvinceSim, free_port  # noqa: E402
from services.common.outbox import Aggregates  # noqa: E402
from services.provincial import domain, protocol  # noqa: E402
from services.provincial.service import ProvincialService  # noqa: E402
from tests.support import service_config, start_container  # noqa: E402

CITY = "140400"


def item(n):
    return {"id": f"OP-B-{n:06d}", "title": f"关于第{n}项民生实事的建议",
            "content": "农村快递末端网点少，群众取件难。" * 4, "category": "社会民生",
            "author": {"name": "王建国", "org": "140428", "sector": "经济界", "party": "cpc"},
            "path": ["140428"], "issue": f"《社情民意》2026年第{n}期", "reported_on": "2026-11-27"}


def raw_capacity(sim, secret, count, limit_s):
    """Signed POSTs straight to the simulator, one at a time."""
    session, lat = requests.Session(), []
    started = time.monotonic()
    for n in range(count):
        body = json.dumps(domain.opinion_body(item(900_000 + n), own_org=CITY,
                                              province_org="140000", tables=CODES),
                          ensure_ascii=False, sort_keys=True).encode()
        headers = protocol.signed_headers(CITY, secret, "POST", "/api/v1/opinions", {}, body)
        headers.update({"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"})
        t0 = time.monotonic()
        resp = session.post(f"{sim.url}/api/v1/opinions", data=body, headers=headers, timeout=10)
        lat.append(time.monotonic() - t0)
        assert resp.status_code == 201, resp.text
        if time.monotonic() - started > limit_s:
            break
    return len(lat) / (time.monotonic() - started), lat


def feed(db, first, count):
    """``count`` due deliveries, as the adapter's inbox handler writes them."""
    now = datetime.utcnow().replace(microsecond=0)
    stamps = {}
    for n in range(first, first + count):
        doc = domain.new_delivery("opinion", item(n)["id"], str(uuid.uuid4()), item(n), now)
        stamps[doc["local_id"]] = time.time()
        Aggregates(db.deliveries).create(doc, [])
    return stamps


def arrived(sim):
    return {r["local_id"]: r["received_ms"] / 1000
            for r in sim.admin("GET", "records?kind=opinions")["items"]}


CODES = None


def main():
    global CODES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--outage-seconds", type=float, default=600)
    parser.add_argument("--paced", type=int, default=100)
    args = parser.parse_args()
    secret = secrets.token_hex(24)
    with local_infra() as infra, tempfile.TemporaryDirectory() as tmp:
        sim = ProvinceSim(Path(tmp) / "province", free_port(), {CITY: {"secret": secret}})
        sim.start()
        try:
            config = dict(service_config(infra, prefix="bench_"), ORG_CODE=CITY, ORG_LEVEL="city",
                          PARENT_ORG="140000", PROVINCE_URL=sim.url, PROVINCE_SECRET=secret)
            CODES = config["PROVINCIAL"]["codes"]
            raw_rate, raw_lat = raw_capacity(sim, secret, args.items, 120)
            container = start_container(ProvincialService, config)
            db = pymongo.MongoClient(infra.mongo_uri)["bench_provincial"]
            try:
                fed = feed(db, 0, args.items)
                got = wait(lambda: (lambda a: a if len(set(fed) & set(a)) == len(fed) else None)(
                    arrived(sim)), 600)
                lat = [got[k] - fed[k] for k in fed]
                span = max(got[k] for k in fed) - min(fed.values())
                print(f"upward, {args.items} items, no injected latency")
                print(f"  simulator raw capacity (signed calls, one at a time): "
                      f"{raw_rate:8.1f} items/s  p50 {percentile(raw_lat, 50) * 1000:6.1f} ms"
                      f"  p99 {percentile(raw_lat, 99) * 1000:6.1f} ms")
                print(f"  through the adapter, {len(fed)} due at once (due → province record): "
                      f"{len(fed) / span:8.1f} items/s  p50 {percentile(lat, 50) * 1000:6.1f} ms"
                      f"  p99 {percentile(lat, 99) * 1000:6.1f} ms (waiting their turn)")
                paced = {}
                for n in range(args.paced):   # one at a time, at 5 items/s
                    paced.update(feed(db, 500_000 + n, 1))
                    time.sleep(0.2)
                got = wait(lambda: (lambda a: a if set(paced) <= set(a) else None)(
                    arrived(sim)), 120)
                lat = [got[k] - paced[k] for k in paced]
                print(f"  through the adapter, {len(paced)} items at 5/s: "
                      f"p50 {percentile(lat, 50) * 1000:6.1f} ms  p99 "
                      f"{percentile(lat, 99) * 1000:6.1f} ms (the sender looks every second)")
                sim.admin("POST", "faults", {"outage_seconds": args.outage_seconds})
                outage_ends = time.time() + args.outage_seconds
                backlog = feed(db, args.items, args.backlog)
                done = wait(lambda: (lambda a: a if len(set(backlog) & set(a)) == len(backlog)
                                     else None)(arrived(sim)), args.outage_seconds + 900, every=1)
                last = max(done[k] for k in backlog)
                first = min(done[k] for k in backlog)
                stats = sim.admin("GET", "stats")
                print(f"catch-up after a {args.outage_seconds:.0f} s outage, {args.backlog} "
                      f"items waiting")
                print(f"  first item {first - outage_ends:6.1f} s after the province was back "
                      f"(breaker reset, backoff); all in {last - outage_ends:6.1f} s: "
                      f"{args.backlog / (last - first):8.1f} items/s once flowing")
                print(f"  the province refused {stats.get('refused_outage', 0)} calls while "
                      f"away; records made twice: {stats.get('same_item_twice', 0)}")
            finally:
                container.stop()
        finally:
            sim.stop()


if __name__ == "__main__":
    main()
