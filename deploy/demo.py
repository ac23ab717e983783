"""Demo data for a local platform, loaded through the public HTTP API."""
import json
import urllib.error
import urllib.request
from datetime import date, timedelta

from deploy import local
from services.common.auth import issue_token
from services.common.config import load_config
from services.liaison import demo as liaison_demo
from services.members import demo as members_demo
from services.proposals import demo as proposals_demo


def _request(url, token, body=None, content_type="application/json", method=None):
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=body, method=method or (
        "POST" if body is not None else "GET"), headers={
        "Authorization": f"Bearer {token}", "Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _post(url, body, token, content_type):
    status, reply = _request(url, token, body, content_type)
    if status >= 300:
        raise RuntimeError(f"{url}: {status} {reply}")
    return reply


def member_ids(name, token):
    ids, cursor = [], None
    for _ in range(100):
        query = "?limit=200&status=active" + (f"&cursor={cursor}" if cursor else "")
        _, page = _request(local.service_url(name, "members", "/api/v1/members" + query), token)
        ids += [m["id"] for m in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return ids


def session_days(today):
    """The plenary of ``today``'s year from the platform's submission windows."""
    config = load_config(local.ROOT / "deploy" / "config" / "platform.yaml")
    for window in config["PROPOSALS"].get("session_windows") or ():
        opens, closes = (date.fromisoformat(str(window[k])) for k in ("opens", "closes"))
        if opens.year == today.year and closes <= today:
            return window["session"], (opens + timedelta(days=1), closes - timedelta(days=1))
    return None, None


def load_proposals(name, token, out):
    units_url = local.service_url(name, "proposals", "/api/v1/units")
    created = sum(1 for unit in proposals_demo.units()
                  if _request(units_url, token, unit)[0] == 201)
    today = date.today()
    session, days = session_days(today)
    records = proposals_demo.year_of_proposals(
        member_ids(name, token), year=today.year, until=today, session_days=days)
    report = _post(local.service_url(name, "proposals", "/api/v1/proposals/import"),
                   {"proposals": records}, token, "application/json")
    out(f"[{name}] demo units: {created} created; demo proposals of {today.year}"
        f"{'（' + session + '）' if session else ''}: "
        f"{report['imported']} imported, {report['skipped']} already there, "
        f"{len(report['errors'])} refused")


def load_liaison(name, token, out):
    config = load_config(local.ROOT / "deploy" / "config" / "platform.yaml")
    places = config["LIAISON"]["places"]
    ids = member_ids(name, token)
    stations = liaison_demo.stations(places, ids)
    url = local.service_url(name, "liaison", "/api/v1/stations")
    created = sum(1 for s in stations if _request(url, token, s)[0] == 201)
    today = date.today()
    records = (liaison_demo.requests(stations, year=today.year, until=today,
                                     org=local.platform_env(name)["ORG_CODE"])
               + liaison_demo.consultations(stations, year=today.year, until=today)
               + liaison_demo.opinions(ids, stations, year=today.year, until=today))
    report = _post(local.service_url(name, "liaison", "/api/v1/liaison/import"),
                   {"records": records}, token, "application/json")
    out(f"[{name}] demo liaison: {created} stations created; requests, consultations and "
        f"社情民意 of {today.year}: {report['imported']} imported, {report['skipped']} "
        f"already there, {len(report['errors'])} refused")
    for error in report["errors"][:5]:
        out(f"[{name}]   refused: {error}")


def load_demo(name="county", out=print):
    env = local.platform_env(name)
    token = issue_token(env["JWT_SECRET"], org=env["ORG_CODE"], roles=["admin"],
                        sub="demo-loader")
    city = env["ORG_LEVEL"] == "city"
    csv_bytes = members_demo.roster_csv(
        members_demo.members(120, seed=140400) if city else members_demo.members(200))
    report = _post(local.service_url(name, "members", "/api/v1/members/import"),
                   csv_bytes, token, "text/csv")
    out(f"[{name}] demo roster: {report['created']} appointed, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {len(report['errors'])} rejected rows")
    if city:  # the city's own roster; its 社情民意 come up from the county
        return
    load_proposals(name, token, out)
    load_liaison(name, token, out)
