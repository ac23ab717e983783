"""Demo data for a local platform, loaded through the public HTTP API."""
import json
import urllib.error
import urllib.request
from datetime import date, timedelta

from deploy import local
from services.common.auth import issue_token
from services.common.config import load_config, platform_data
from deploy.demo_data import liaison as liaison_demo
from deploy.demo_data import members as members_demo
from deploy.demo_data import proposals as proposals_demo


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


def _post(url, body, token, content_type="application/json"):
    """A write of the demo's; refused, the demo stops there and says why."""
    status, reply = _request(url, token, body, content_type)
    if status >= 300:
        raise local.LaunchError(f"demo: {url} answered {status}: "
                                f"{json.dumps(reply, ensure_ascii=False)}")
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


def demo_day(name):
    """The day the demo's year of history runs up to: the day the platform's
    demo was first loaded, kept in its run directory, so that loading it again
    (on any later day) finds everything already there and adds nothing."""
    path = local.RUN / name / "demo-day"
    try:
        return date.fromisoformat(path.read_text().strip())
    except (OSError, ValueError):
        day = date.today()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(day.isoformat() + "\n")
        return day


def session_days(today):
    """The plenary of ``today``'s year from the platform's submission windows."""
    config = load_config(local.ROOT / "deploy" / "config" / "platform.yaml")
    for window in config["PROPOSALS"].get("session_windows") or ():
        opens, closes = (date.fromisoformat(str(window[k])) for k in ("opens", "closes"))
        if opens.year == today.year and closes <= today:
            return window["session"], (opens + timedelta(days=1), closes - timedelta(days=1))
    return None, None


def load_proposals(name, token, out, level="county"):
    units_url = local.service_url(name, "proposals", "/api/v1/units")
    created = sum(1 for unit in proposals_demo.units(level)
                  if _request(units_url, token, unit)[0] == 201)
    today = demo_day(name)
    session, days = session_days(today)
    records = proposals_demo.year_of_proposals(
        member_ids(name, token), year=today.year, until=today, session_days=days)
    report = _post(local.service_url(name, "proposals", "/api/v1/proposals/import"),
                   {"proposals": records}, token, "application/json")
    out(f"[{name}] demo units: {created} created; demo proposals of {today.year}"
        f"{'（' + session + '）' if session else ''}: "
        f"{report['imported']} imported, {report['skipped']} already there, "
        f"{len(report['errors'])} refused")


def load_liaison(name, token, out, records=True):
    places = platform_data("places", local.platform_env(name)["ORG_CODE"], {})
    ids = member_ids(name, token)
    stations = liaison_demo.stations(places, ids)
    url = local.service_url(name, "liaison", "/api/v1/stations")
    created = sum(1 for s in stations if _request(url, token, s)[0] == 201)
    if not records:
        out(f"[{name}] demo liaison: {created} stations created")
        return
    today = demo_day(name)
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
    csv_bytes = members_demo.roster_csv(city_roster() if city else members_demo.members(200))
    report = _post(local.service_url(name, "members", "/api/v1/members/import"),
                   csv_bytes, token, "text/csv")
    out(f"[{name}] demo roster: {report['created']} appointed, {report['updated']} updated, "
        f"{report['unchanged']} unchanged, {len(report['errors'])} rejected rows")
    if city:  # its own proposals and tasks; 社情民意 and 联动提案 come up from the county
        load_proposals(name, token, out, level="city")
        load_liaison(name, token, out, records=False)
        load_tasks(name, token, env, out)
        return
    load_proposals(name, token, out)
    load_liaison(name, token, out)
    load_linked(name, token, out)


def city_roster():
    """The city's 120 members: ten of them also sit on the county's committee
    (the same people, so the roll-up counts them once)."""
    both = [dict(m, role="member", committees=["提案委"]) for m in members_demo.members(200)[1:11]]
    return both + members_demo.members(110, seed=140400)


def load_tasks(name, token, env, out):
    """Two tasks for the linked counties, once."""
    url = local.service_url(name, "liaison", "/api/v1/tasks")
    if _request(url + "?limit=1", token)[1]["items"] or not env.get("CHILD_ORGS"):
        return
    today = date.today()
    for kind, title, content, days in (
            ("research", "关于县域医疗卫生共同体建设的联合调研",
             "请各县（区）政协组织相关界别委员开展调研，报送调研报告。", 30),
            ("notice", "关于报送年度委员履职情况的通知", "请汇总本级委员年度履职情况并报送。", 14)):
        _post(url, {"kind": kind, "title": title, "content": content,
                    "due_on": (today + timedelta(days=days)).isoformat()}, token)
    out(f"[{name}] demo tasks for the linked counties: 2 created")


def load_linked(name, token, out):
    """Live steps that reach the city: two proposals beyond county remit
    forwarded, three 社情民意 reported to the city; once."""
    proposals = local.service_url(name, "proposals", "/api/v1/proposals")
    if _request(proposals + "?state=forwarded&limit=1", token)[1]["items"]:
        return
    ids = member_ids(name, token)
    for i, (title, reason) in enumerate((
            ("关于开通长子至长治城际公交的建议", "线路跨县区，须市交通运输局统筹"),
            ("关于浊漳河南源跨县流域综合治理的建议", "流域跨县，须市级统筹治理"))):
        body = {"kind": "member", "type": "interim", "title": title, "lead_member": ids[i],
                "situation": "群众反映强烈。", "analysis": "事项超出县级职权。",
                "suggestions": "建议由市级部门统筹解决。", "category": "livelihood"}
        pid = _post(proposals, body, token)["id"]
        for action, data in (("submit", {}), ("classify", {}),
                             ("propose", {"decision": "forward", "reason": reason}),
                             ("decide", {})):
            _post(f"{proposals}/{pid}/actions/{action}", data, token)
    opinions = local.service_url(name, "liaison", "/api/v1/opinions")
    for i, title in enumerate(("关于农村留守老人助餐服务的建议", "关于中小学课后服务的建议",
                               "关于规范农村自建房的建议")):
        oid = _post(opinions, {"title": title, "content": "建议……",
                               "author_member": ids[i]}, token)["id"]
        for action, data in (("accept", {}), ("issue", {}), ("report", {"level": "city"})):
            _post(f"{opinions}/{oid}/actions/{action}", data, token)
    out(f"[{name}] demo linkage: 2 proposals forwarded and 3 社情民意 reported to the city")


def load_province(county="county", city="city", out=print):
    """三级联动 to the province, once each: two of the county's 社情民意 that
    reached the city are reported on to the province by the city office, and
    the (simulated) provincial office adopts one and a vice-governor instructs
    on the other; one of the county's proposals at the city is forwarded on to
    the provincial committee, which registers it; the provincial office
    publishes a task, which the city accepts and passes on to the county; and
    the yearly figures of both platforms go up. All feedback flows back down
    to the county."""
    env = local.platform_env(city)
    token = issue_token(env["JWT_SECRET"], org=env["ORG_CODE"], roles=["admin"],
                        sub="demo-loader")
    sim = local.parts(city).get("province")
    if sim is None:
        return
    child = local.platform_spec(county)["ORG_CODE"]
    _province_opinions(city, sim, child, token, out)
    _province_proposal(city, sim, child, token, out)
    _province_task(city, sim, child, token, out)
    _province_figures(city, sim, child, token, out)


def _province_opinions(city, sim, child, token, out):
    opinions = local.service_url(city, "liaison", "/api/v1/opinions")
    if sim.admin("GET", "records?kind=opinions")["items"]:
        return

    def intake():
        items = _request(f"{opinions}?limit=200", token)[1]["items"]
        return [o for o in items if o["id"].startswith(f"{child}-")]
    local.wait_for(lambda: len(intake()) >= 2, 90, "the county's 社情民意 at the city")
    chosen = sorted(intake(), key=lambda o: o["id"])[:2]
    for item in chosen:
        steps = [("report", {"level": "province"})]
        if item["state"] == "submitted":
            steps = [("accept", {}), ("issue", {})] + steps
        for action, data in steps:
            _post(f"{opinions}/{item['id']}/actions/{action}", data, token)
    local.wait_for(lambda: len(sim.admin("GET", "records?kind=opinions")["items"]) >= 2, 90,
                   "the items at the provincial platform")
    first, second = sorted(sim.admin("GET", "records?kind=opinions")["items"],
                           key=lambda r: r["local_id"])[:2]
    sim.admin("POST", f"records/{first['id']}/adopt",
              {"issue": "《山西政协社情民意》", "number": 12})
    sim.admin("POST", f"records/{second['id']}/instruct",
              {"leader": "副省长", "text": "请省直有关部门研究办理。"})
    out(f"[{city}] demo province: 2 of the county's 社情民意 reported to the province; "
        "1 adopted, 1 instructed there (the feedback flows down to the county)")


def _province_proposal(city, sim, child, token, out):
    """The first of the county's proposals at the city, forwarded on to the
    provincial committee, which registers it."""
    if sim.admin("GET", "records?kind=proposals")["items"]:
        return
    proposals = local.service_url(city, "proposals", "/api/v1/proposals")

    def linked():
        items = _request(f"{proposals}?kind=linked&limit=50", token)[1]["items"]
        return sorted((p for p in items if (p.get("source") or {}).get("org") == child
                       and p["state"] == "submitted"), key=lambda p: p["id"])
    local.wait_for(lambda: bool(linked()), 90, "the county's proposals at the city")
    pid = linked()[0]["id"]
    for action, data in (("classify", {}),
                         ("propose", {"decision": "forward",
                                      "reason": "涉及跨市统筹，须省政协协调省直部门办理"}),
                         ("decide", {})):
        _post(f"{proposals}/{pid}/actions/{action}", data, token)
    local.wait_for(lambda: bool(sim.admin("GET", "records?kind=proposals")["items"]), 90,
                   "the proposal at the provincial platform")
    [record] = sim.admin("GET", "records?kind=proposals")["items"][:1]
    sim.admin("POST", f"records/{record['id']}/progress",
              {"state": "registered", "text": "省政协提案委员会已立案，交省直有关部门办理"})
    out(f"[{city}] demo province: 1 of the county's proposals forwarded on to the provincial "
        "committee and registered there (shown at the county)")


def _province_task(city, sim, child, token, out):
    """A provincial task to the city, accepted and passed on to the county."""
    if sim.admin("GET", "tasks")["items"]:
        return
    task = sim.admin("POST", "tasks", {
        "kind": "research", "title": "关于开展全省基层协商民主建设情况调研的通知",
        "content": "请各市政协会同所辖县（区）政协开展调研，按期报送调研报告。",
        "due_on": (date.today() + timedelta(days=45)).isoformat(),
        "targets": [local.platform_spec(city)["ORG_CODE"]]})
    tasks = local.service_url(city, "liaison", "/api/v1/tasks")
    local.wait_for(lambda: _request(f"{tasks}/{task['id']}", token, method="GET")[0] == 200,
                   90, "the province's task at the city")
    _post(f"{tasks}/{task['id']}/actions/accept", {}, token)
    _post(tasks, {"kind": "research", "title": task["title"],
                  "content": "转发省政协任务：" + task["content"],
                  "due_on": (date.today() + timedelta(days=30)).isoformat(),
                  "targets": [child], "parent_task": task["id"]}, token)
    out(f"[{city}] demo province: a provincial task accepted by the city and passed on to "
        "the county")


def _province_figures(city, sim, child, token, out):
    """This year's figures of both platforms, once the county's have reached the city."""
    def counted():
        parts = [_request(local.service_url(city, service, path), token)[1]["items"]
                 for service, path in (("proposals", "/api/v1/proposals/statistics/counties"),
                                       ("liaison", "/api/v1/liaison/statistics/counties"))]
        return all(any(c["org"] == child and c["figures"] for c in p) for p in parts)
    local.wait_for(counted, 120, "the county's figures at the city")
    url = local.service_url(city, "provincial", "/api/v1/province/figures")
    changed = _post(url, {}, token)["changed"]
    out(f"[{city}] demo province: this year's figures sent for {', '.join(changed) or 'none'}")
