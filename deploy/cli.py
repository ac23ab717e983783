"""``zhzx``: the operator's command.

    zhzx up [--platform county] [--no-demo]     start a local platform
            [--one-process]                     … with its services in one process
    zhzx down [--platform county]               stop what `up` started
    zhzx token --role admin [--role ...]        print a dev token for the platform
    zhzx dlq list [--queue zhzx.dlq]            dead letters with their errors
    zhzx dlq replay ID [--queue zhzx.dlq]       send one back where it failed
    zhzx link [--county county --city city]     federate a county and its city (idempotent)
    zhzx link status                            each link's state and buffered events
    zhzx province deliveries [--failed]         what the adapter sent to the province
    zhzx province retry ID                      a refused delivery, again
    zhzx status [--platform county | --pair]    each part: state, PID, uptime, restarts, ready
    zhzx stop|start|restart SERVICE [--platform county]
                                                one part, through the supervisor (no re-link)

Settings come from ``--config FILE`` (a platform YAML), or the resolved
settings a local ``zhzx up`` wrote for ``--platform`` (default county).
"""
import argparse
import json
import os
import sys
import threading
from pathlib import Path

from services.common.auth import issue_token, valid_role


def _settings(args):
    if getattr(args, "config", None):
        from services.common.config import load_config
        return {k: str(v) for k, v in load_config(args.config).items()
                if not isinstance(v, (dict, list))}
    from deploy.local import RUN
    env_file = Path(os.environ.get("ZHZX_PLATFORM_ENV") or RUN / args.platform / "platform.env")
    if not env_file.exists():
        sys.exit(f"no settings for platform {args.platform!r} ({env_file} missing): "
                 "run `make up`, or pass --config FILE")
    settings = {}
    for line in env_file.read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            settings[key] = value
    return settings


def cmd_token(args):
    for role in args.role:
        if not valid_role(role):
            sys.exit(f"unknown role {role!r}: admin, reviewer, citizen, unit:<id>, "
                     "member:<id>, station:<id>")
    settings = _settings(args)
    print(issue_token(settings["JWT_SECRET"], org=args.org or settings["ORG_CODE"],
                      roles=args.role, sub=args.sub, ttl_seconds=args.ttl))


def cmd_dlq(args):
    from services.common import dlq
    uri = _settings(args)["AMQP_URI"]
    if args.dlq_command == "list":
        items = dlq.list_dead_letters(uri, queue=args.queue, limit=args.limit)
        if args.json:
            print(json.dumps(items, ensure_ascii=False, indent=2))
            return
        if not items:
            print(f"{args.queue}: empty")
        for item in items:
            print(f"{item['id']}  {item['type'] or '?'}  event={item['event_id']}  "
                  f"queue={item['queue']}  attempts={item['attempts']}  "
                  f"failed_at={item['failed_at']}\n    error: {item['error']}")
    else:
        info = dlq.replay(uri, args.id, queue=args.queue)
        if info is None:
            sys.exit(f"no message {args.id} in {args.queue}")
        target = info["queue"] if args.queue == dlq.DLQ_NAME else info["exchange"]
        print(f"replayed {args.id} ({info['type']}) to {target}")


def _as_office(args, service):
    """(base URL, headers) to call ``service`` of the platform as its office:
    ``--url`` or the local platform's, with a short-lived admin token."""
    settings = _settings(args)
    base = args.url
    if not base:
        from deploy import local
        base = local.service_url(args.platform, service)
    token = issue_token(settings["JWT_SECRET"], org=settings["ORG_CODE"], roles=["admin"],
                        sub="zhzx-cli", ttl_seconds=600)
    return base, {"Authorization": f"Bearer {token}"}


def cmd_records(args):
    """Rebuild the 履职档案 from the stored facts through the members API."""
    import requests
    base, headers = _as_office(args, "members")
    params = {"year": args.year} if args.year else {}
    resp = requests.post(f"{base}/api/v1/records/rebuild", params=params, json={},
                         headers=headers, timeout=600)
    if resp.status_code != 200:
        sys.exit(f"rebuild failed: {resp.status_code} {resp.text}")
    body = resp.json()
    print(f"rebuilt {body['records']} records"
          + (f" of {body['year']}" if body.get("year") else "") + f"; digest {body['digest']}")


def _link_refs(args):
    from services.common.federation import BrokerRef
    if args.county_mgmt:
        def ref(side, mgmt, amqp, tls):
            admin = getattr(args, f"{side}_admin") or os.environ.get(f"ZHZX_{side.upper()}_ADMIN")
            if not admin or ":" not in admin:
                sys.exit(f"give the {side} broker's administrator as --{side}-admin USER:PASSWORD"
                         f" or ZHZX_{side.upper()}_ADMIN")
            host, port = amqp.rsplit(":", 1)
            return BrokerRef(mgmt.rstrip("/"), host, int(port), tuple(admin.split(":", 1)),
                             tls=tls)
        if not (args.county_amqp and args.city_mgmt and args.city_amqp and args.county_org
                and args.city_org):
            sys.exit("give --county-mgmt, --county-amqp, --county-org, --city-mgmt, "
                     "--city-amqp and --city-org together")
        return (ref("county", args.county_mgmt, args.county_amqp, args.county_tls),
                ref("city", args.city_mgmt, args.city_amqp, args.city_tls),
                args.county_org, args.city_org)
    from deploy import local
    refs = []
    for name in (args.county, args.city):
        spec = local.platform_spec(name)
        # over TLS: each broker's link verifies the other's certificate for localhost
        refs.append((BrokerRef(f"http://127.0.0.1:{spec['mgmt']}", "localhost", spec["amqps"],
                               local.broker_admin(name), tls=str(local.tls_dir(name))),
                     spec["ORG_CODE"]))
    return refs[0][0], refs[1][0], refs[0][1], refs[1][1]


def cmd_province(args):
    """The adapter's deliveries to the province (and retrying one)."""
    import requests
    base, headers = _as_office(args, "provincial")
    try:
        if args.province_command == "retry":
            resp = requests.post(f"{base}/api/v1/deliveries/{args.id}/retry", json={},
                                 headers=headers, timeout=30)
            if resp.status_code != 200:
                sys.exit(f"retry failed: {resp.status_code} {resp.text}")
            print(f"{args.id}: {resp.json()['state']}")
            return
        health = requests.get(f"{base}/api/v1/province/health", headers=headers,
                              timeout=30).json()
        params = {"limit": 500, **({"state": "refused"} if args.failed else {})}
        listed = requests.get(f"{base}/api/v1/deliveries", params=params, headers=headers,
                              timeout=30).json()
    except requests.RequestException as exc:
        sys.exit(f"zhzx province: the adapter at {base} does not answer ({type(exc).__name__})")
    if args.json:
        print(json.dumps({"health": health, "deliveries": listed["items"]}, ensure_ascii=False))
        return
    error = health.get("last_error") or {}
    print(f"endpoint {health.get('endpoint') or '(none configured)'}  breaker "
          f"{health.get('breaker')}  backlog {health.get('backlog')}  refused "
          f"{health.get('refused')}  last success {health.get('last_success') or '-'}"
          + (f"  last error {error.get('code')}" if error else ""))
    for d in listed["items"]:
        err = d.get("last_error") or {}
        print(f"{d['id']:<32} {d['state']:<12} attempts {d['attempts']:<3} "
              f"{d.get('record_id') or '-':<16} {d.get('title') or ''}"
              + (f"\n    {err.get('code')}: {err.get('message')}" if err and
                 d["state"] != "acknowledged" else ""))
    if not listed["items"]:
        print("no deliveries" + (" refused" if args.failed else ""))


def cmd_keygen(args):
    from services.common.signing import key_id, new_private_key, public_key
    private = new_private_key()
    public = public_key(private)
    print(f"LINK_SIGNING_KEY={private}\n# public key for the peers' trust files "
          f"(key id {key_id(public)}):\n{public}")


def _remote_trust(args):
    """(county trust file, city trust file) when keys are to be registered."""
    given = [args.county_key, args.city_key, args.county_trust, args.city_trust]
    if not any(given):
        return None
    if not all(given):
        sys.exit("give --county-key, --city-key, --county-trust and --city-trust together")
    from services.common.signing import key_id
    try:
        for key in [*args.county_key, *args.city_key]:
            key_id(key)
    except ValueError as exc:
        sys.exit(f"zhzx link: {exc}")
    return args.county_trust, args.city_trust


def cmd_link(args):
    from services.common import federation
    county, city, county_org, city_org = _link_refs(args)
    try:
        if args.link_command == "status":
            rows = federation.status(county, city)
            for row in rows:
                buffered = "?" if row["buffered"] is None else row["buffered"]
                oldest = f"  oldest {row['oldest_seconds']} s" \
                    if row.get("oldest_seconds") is not None else ""
                refusals = row.get("refused") or {}
                refused = f"  refused {sum(refusals.values())} (" + ", ".join(
                    f"{k} {v}" for k, v in sorted(refusals.items())) + ")" if refusals else ""
                over = f"  over {row['uri']}" if row.get("uri") else ""
                print(f"{row['link']:<5} {row['exchange']:<10} {row['state']:<12} "
                      f"buffered {buffered}{oldest}{refused}{over}"
                      + (f"  error: {row['error']}" if row.get("error") else ""))
            if args.json:
                print(json.dumps(rows, ensure_ascii=False))
            return
        if args.county_mgmt:
            trust = _remote_trust(args)   # checked before the brokers are touched
        # each side's key first: an event that crosses the new link at once
        # must find its origin trusted, or it is refused (unknown_origin)
        if not args.county_mgmt:   # local platforms: register each other's signing key
            from deploy import local
            local.register_link_keys(args.county, args.city)
        elif trust:
            from services.common.signing import register_link
            register_link(*trust, county_org=county_org, city_org=city_org,
                          county_keys=args.county_key, city_keys=args.city_key)
            print(f"registered the signing keys: the county's in {trust[1]}, the city's "
                  f"in {trust[0]} (load each into its platform's LINK_TRUST_FILE)")
        else:
            print("signing keys not registered: give --county-key, --city-key, "
                  "--county-trust and --city-trust, or see docs/security.md#registering-keys;"
                  " until then each side refuses the other's events (unknown_origin)")
        done = federation.link(county, city, county_org=county_org, city_org=city_org)
    except (RuntimeError, OSError) as exc:
        sys.exit(f"zhzx link failed: {exc}")
    print(f"linked county {county_org} and city {city_org}: zhzx.up federated to the city "
          f"(upstream {done['up']['upstream']}, user {done['up']['user']}), zhzx.down to "
          f"the county (upstream {done['down']['upstream']}, user {done['down']['user']}), "
          "ack-mode on-confirm")


def cmd_up(args):
    from deploy import local
    names = local.PAIR if args.pair else (args.platform,)
    for name in names:
        try:
            env = local.up(name, demo=not args.no_demo, one_process=args.one_process)
        except local.LaunchError as exc:
            sys.exit(f"zhzx up failed: {exc}")
        print_ready(local, name, env)
    if args.pair:
        from services.common import federation
        args.county, args.city, args.county_mgmt = *local.PAIR, None
        county, city, county_org, city_org = _link_refs(args)
        local.register_link_keys(*local.PAIR)   # before the link: see cmd_link
        federation.link(county, city, county_org=county_org, city_org=city_org)
        print(f"\nlinked: county {county_org} ⇄ city {city_org} (zhzx.up / zhzx.down "
              "federated; `zhzx link status`)")
        if not args.no_demo:
            from deploy.demo import load_province
            try:
                load_province(*local.PAIR)
            except local.LaunchError as exc:
                sys.exit(f"zhzx up failed: demo province: {exc}")


def print_ready(local, name, env):
    token = issue_token(env["JWT_SECRET"], org=env["ORG_CODE"], roles=["admin"], sub="admin")
    print(f"\n{env['ORG_NAME']} ({env['ORG_CODE']}) platform is ready:")
    for service in local.SERVICES:
        print(f"  {service:<11} {local.service_url(name, service)}/api/v1/  "
              f"(/healthz /readyz /metrics)")
    spec = local.platform_spec(name)
    print(f"  broker      amqp://127.0.0.1:{spec['amqp']}  amqps://localhost:{spec['amqps']}"
          f" (links)  management http://127.0.0.1:{spec['mgmt']} (user {local.BROKER_ADMIN},"
          f" password in {local.RUN / name / 'broker-users.json'})")
    print(f"  MongoDB     mongodb://127.0.0.1:{spec['mongo']}")
    print(f"\nadmin token (12 h; `zhzx token --platform {name} --role admin` for another):"
          f"\n{token}")


def cmd_down(args):
    # imported here, in the main thread: importing eventlet (which supervise
    # does) from another thread leaves that thread unjoinable
    from deploy import local, supervise  # noqa: F401
    lock = threading.Lock()

    def out(line):
        with lock:
            print(line, flush=True)
    try:   # the two platforms of a pair at once
        local.at_once(lambda name: local.down(name, out=out),
                      local.PAIR if args.pair else (args.platform,))
    except local.LaunchError as exc:
        sys.exit(f"zhzx down failed: {exc}")
    local.stop_idle_epmd()


def _duration(seconds):
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _megabytes(value):
    return "-" if value is None else f"{value / 2 ** 20:.0f} MB"


def cmd_status(args):
    from deploy import local, supervise
    try:
        names = local.PAIR if args.pair else (args.platform,)
        reports = [supervise.status(name) for name in names]
    except local.LaunchError as exc:
        sys.exit(f"zhzx status failed: {exc}")
    if args.json:
        print(json.dumps(reports, ensure_ascii=False))
        return
    for report in reports:
        sup = report["supervisor"]
        print(f"[{report['platform']}] supervisor: " + (f"pid {sup}" if sup else
                                                       "not running (nothing is restarted)"))
        print(f"  {'part':<10} {'state':<9} {'pid':>8} {'uptime':>8} {'restarts':>8} "
              f"{'memory':>8}  readiness")
        for row in report["parts"]:
            print(f"  {row['part']:<10} {row['state']:<9} {row['pid'] or '-':>8} "
                  f"{_duration(row['uptime_seconds']):>8} {row['restarts']:>8} "
                  f"{_megabytes(row['rss_bytes']):>8}  {row['readiness']}")
        print(f"  {'total':<10} {'':<9} {'':>8} {'':>8} {'':>8} "
              f"{_megabytes(report['rss_bytes']):>8}  (resident memory)")


def cmd_part(args):
    """stop / start / restart one part of a local platform."""
    from deploy import local, supervise
    try:
        reply = supervise.command(args.platform, args.command, args.part)
    except local.LaunchError as exc:
        sys.exit(f"zhzx {args.command} failed: {exc}")
    if not reply.get("ok"):
        sys.exit(f"zhzx {args.command} failed: {reply.get('error')}")
    print(f"[{args.platform}] {args.part}: {reply['state']}"
          + (f" (pid {reply['pid']})" if reply.get("pid") else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="zhzx", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--platform", default="county", help="local platform name")
        p.add_argument("--config", help="platform YAML instead of a local platform")

    p = sub.add_parser("token", help="print a dev bearer token")
    common(p)
    p.add_argument("--role", action="append", required=True)
    p.add_argument("--sub", default="dev")
    p.add_argument("--org", help="another org code (for testing a refusal)")
    p.add_argument("--ttl", type=int, default=12 * 3600)
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("dlq", help="dead letters")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    pl = dsub.add_parser("list")
    common(pl)
    pl.add_argument("--queue", default="zhzx.dlq", choices=["zhzx.dlq", "zhzx.unrouted"])
    pl.add_argument("--limit", type=int, default=1000)
    pl.add_argument("--json", action="store_true")
    pr = dsub.add_parser("replay")
    common(pr)
    pr.add_argument("id")
    pr.add_argument("--queue", default="zhzx.dlq", choices=["zhzx.dlq", "zhzx.unrouted"])
    p.set_defaults(func=cmd_dlq)

    p = sub.add_parser("records", help="履职档案")
    rsub = p.add_subparsers(dest="records_cmd", required=True)
    pr = rsub.add_parser("rebuild", help="recompute every record from the stored facts")
    common(pr)
    pr.add_argument("--year", type=int)
    pr.add_argument("--url", help="members service base URL (default: the local platform)")
    pr.set_defaults(func=cmd_records)

    p = sub.add_parser("link", help="federate a county platform and its city (三级联动)")
    p.add_argument("link_command", nargs="?", choices=["status"], help="show the links")
    p.add_argument("--county", default="county", help="local county platform")
    p.add_argument("--city", default="city", help="local city platform")
    p.add_argument("--county-mgmt", help="county broker management URL (instead of local)")
    p.add_argument("--county-amqp", help="county broker HOST:PORT as the city reaches it")
    p.add_argument("--county-org")
    p.add_argument("--city-mgmt")
    p.add_argument("--city-amqp", help="city broker HOST:PORT as the county reaches it")
    p.add_argument("--city-org")
    p.add_argument("--county-admin", help="county broker's management USER:PASSWORD "
                   "(or ZHZX_COUNTY_ADMIN)")
    p.add_argument("--city-admin", help="city broker's management USER:PASSWORD "
                   "(or ZHZX_CITY_ADMIN)")
    p.add_argument("--county-tls", help="directory of ca.crt, tls.crt, tls.key on the county "
                   "broker's nodes: its link to the city runs over amqps")
    p.add_argument("--city-tls", help="the same on the city broker's nodes")
    p.add_argument("--county-key", action="append",
                   help="the county's public signing key (twice during a rotation)")
    p.add_argument("--city-key", action="append", help="the city's public signing key")
    p.add_argument("--county-trust", help="the county's trust file to register the city's key in")
    p.add_argument("--city-trust", help="the city's trust file to register the county's key in")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_link)

    p = sub.add_parser("province", help="deliveries to the provincial platform")
    psub = p.add_subparsers(dest="province_command", required=True)
    pd = psub.add_parser("deliveries", help="the adapter's health and its deliveries")
    common(pd)
    pd.add_argument("--failed", action="store_true", help="only those the province refused")
    pd.add_argument("--url", help="the provincial adapter's base URL (default: local)")
    pd.add_argument("--json", action="store_true")
    pr = psub.add_parser("retry", help="send a refused delivery again")
    common(pr)
    pr.add_argument("id", help="e.g. opinion:140428-OP-2026-0003")
    pr.add_argument("--url")
    p.set_defaults(func=cmd_province)

    p = sub.add_parser("keygen", help="a new link signing key (docs/security.md)")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("up", help="start a local platform with demo data")
    p.add_argument("--platform", default="county")
    p.add_argument("--pair", action="store_true",
                   help="the county and its city, each with its own broker, linked")
    p.add_argument("--no-demo", action="store_true")
    p.add_argument("--one-process", action="store_true",
                   help="each platform's services in one process (deploy/cohost.py): "
                        "less memory, one failure domain")
    p.set_defaults(func=cmd_up)
    p = sub.add_parser("down", help="stop a local platform")
    p.add_argument("--platform", default="county")
    p.add_argument("--pair", action="store_true")
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("status", help="each part of a local platform")
    p.add_argument("--platform", default="county")
    p.add_argument("--pair", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    for verb, what in (("stop", "stop one part (it stays stopped)"),
                       ("start", "start a stopped part"),
                       ("restart", "stop and start one part")):
        p = sub.add_parser(verb, help=what)
        p.add_argument("part", help="members, proposals, liaison, notify, provincial (or "
                       "services, under --one-process), broker, mongo, mail")
        p.add_argument("--platform", default="county")
        p.set_defaults(func=cmd_part)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
