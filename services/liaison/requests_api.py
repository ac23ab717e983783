"""Liaison entrypoints for citizen requests and their ledger (台账), mixed
into ``LiaisonService``."""
from datetime import timedelta

from nameko.timer import timer
from pymongo.errors import DuplicateKeyError

from services.common.lease import duty
from services.common.http import api, moment_param
from services.common.outbox import strip_internal
from services.common.problems import Conflict, Forbidden, Invalid
from services.common.xlsx import XLSX, workbook, xlsx_response

from . import citizen, opinions, stations
from .citizen import REQUESTS
from .opinions import OPINIONS
from .schemas import REQUEST_ACTIONS, RequestView, request_in

STAFF = ("admin", "reviewer")
LEDGER_COLUMNS = [("编号", "_id"), ("站点", "station"), ("类别", "category"), ("事项", "title"),
                  ("状态", "state"), ("承办委员", "member"), ("登记时间", "filed_at"),
                  ("派单时间", "dispatched_at"), ("接单时间", "accepted_at"),
                  ("办结时间", "closed_at"), ("办理结果", "result"), ("是否解决", "resolved"),
                  ("按期办结", "on_time"), ("评价", "rating"), ("转化", "escalation")]


class RequestsApi:
    @staticmethod
    def request_view(doc, principal):
        return with_id(citizen.view(strip_internal(doc), principal))

    @api("POST", "/api/v1/requests", query={}, body=request_in, response=RequestView, status=201,
         summary="登记群众诉求（群众点单）")
    def file_request(self, request):
        data = request.input
        station = self.store.get("stations", data["station_id"])
        if station is None or not station.get("active"):
            raise Invalid({"station_id": ["站点不存在或已停用"]})
        if data.get("place_code") and self.places.get(data["place_code"]) is None:
            raise Invalid({"place_code": ["不是本平台的乡镇或村（社区）编码"]})
        doc, events = citizen.new_request(
            data, request.principal, request_id=self.new_id("RQ"), station=station,
            org=self.identity.org_code, now=self.now(), rules=self.request_rules())
        doc = self.insert(request, REQUESTS, doc, ({}, events))
        return 201, {"Location": f"/api/v1/requests/{doc['_id']}"}, self.request_view(
            doc, request.principal)

    @api("GET", "/api/v1/requests",
         query={"station": str, "member": str, "state": str, "year": int, "category": str},
         paged=200, response=RequestView, summary="诉求列表（按角色可见）")
    def list_requests(self, request):
        if request.query.get("state") and request.query["state"] not in citizen.STATE_LABELS:
            raise Invalid({"state": ["未知的状态"]})
        return self.listing(request, REQUESTS, lambda d: self.request_view(d, request.principal),
                            renames={"station": "station_id", "member": "member_id"})

    @api("GET", "/api/v1/requests/<string:request_id>", query={}, response=RequestView,
         summary="诉求详情")
    def read_request(self, request, request_id):
        return self.request_view(REQUESTS.load(self.db, request_id, request.principal),
                                 request.principal)

    @api("GET", "/api/v1/requests/<string:request_id>/suggestions", query={}, summary="派单建议（委员）")
    def suggestions(self, request, request_id):
        doc = REQUESTS.load(self.db, request_id, request.principal)
        if not stations.is_staff(request.principal, doc["station_id"]):
            raise Forbidden("只有本站点工作人员或政协办公室可以派单")
        nearby = list(self.store.all("stations", {"township": doc["township"], "active": 1}))
        ids = sorted({m for s in nearby for m in s["members"]})
        found = self.active_members(ids)
        ranked = citizen.suggest_members(doc, nearby, found, self.store.member_load(set(ids)),
                                         self.request_rules())
        return {"request_id": request_id, "items": ranked}

    @api("POST", "/api/v1/requests/<string:request_id>/actions/<string:action>", query={},
         body=REQUEST_ACTIONS, response=RequestView, summary="诉求办理操作")
    def act_on_request(self, request, request_id, action):
        data = request.input
        actor = request.principal

        def decide(doc):
            citizen.FLOW.check(doc, action, actor)
            active = None
            if action == "dispatch":
                active = data["member_id"] in self.active_members([data["member_id"]])
            if action == "escalate":
                citizen.check_escalation(doc)
                data["target_id"] = self.escalation_target(request, doc, data)
            return citizen.act(doc, action, data, actor, now=self.now(),
                               rules=self.request_rules(), member_active=active)
        doc = self.command(request, REQUESTS, request_id, decide, expected=data.pop("seq", None))
        return self.request_view(doc, actor)

    def escalation_target(self, request, doc, data):
        """The 社情民意 item (created here) or the proposal draft (created by the
        proposals service from the event) an unresolved request turns into."""
        if data["to"] == "proposal":
            if not doc.get("member_id"):
                raise Invalid({"to": ["转为提案须有承办委员"]})
            return f"{self.identity.org_code}-rq-{doc['_id']}"
        opinion_id = f"OP-{doc['_id']}"
        if self.store.get("opinions", opinion_id) is None:
            station = self.store.get("stations", doc["station_id"])
            author = doc.get("member_id")
            item, events = opinions.new_opinion(
                {"title": data.get("title") or doc["title"],
                 "content": data.get("note") or doc["description"],
                 "category": doc.get("topic"), "author_member": author,
                 "station_id": doc["station_id"], "source_request": doc["_id"]},
                request.principal, opinion_id=opinion_id, org=self.identity.org_code,
                today=self.today(), members_found=self.active_members([author]),
                station=station)
            try:
                self.insert(request, OPINIONS, item, ({}, events))
            except DuplicateKeyError:  # a retry of the same escalation
                pass
        return opinion_id

    @timer(interval=600)
    @duty("request_scan")
    def scheduled_scan(self):
        self.scan_requests(self.now())

    @api("POST", "/api/v1/requests/scan", roles=("admin",), query={"now": str},
         summary="立即执行诉求超时扫描")
    def scan(self, request):
        """Runs the deadline scan now (the timer runs it every 10 minutes);
        ``?now=YYYY-MM-DDTHH:MM`` scans as of another time (checks and drills)."""
        return self.scan_requests(moment_param(request, "now", self.now()))

    def scan_requests(self, now):
        report = {"now": now.isoformat(timespec="seconds"), "scanned": 0, "overdue": 0,
                  "conflicts": 0}
        after = timedelta(hours=self.request_rules().office_after_hours)
        for r in list(self.store.all("requests", {"state": {"$in": list(citizen.OPEN)}})):
            report["scanned"] += 1
            decision = citizen.scan(r, now, office_after=after)
            if not decision[1]:
                continue
            try:
                self.commit(None, REQUESTS, r, decision, actor="system:scan")
                report["overdue"] += 1
            except Conflict:
                report["conflicts"] += 1
        return report

    # --- ledger (台账) ------------------------------------------------------------
    def ledger_rows(self, request):
        args = request.query
        p = request.principal
        if not (p.has_any(STAFF) or args.get("station") in p.ids("station")
                or args.get("member") in p.ids("member")):
            raise Forbidden("只能查看本站点或本人的台账")
        query = {{"station": "station_id", "member": "member_id"}.get(k, k): v
                 for k, v in args.items()}
        return list(self.store.all("requests", query, {"contact": 0, "history": 0,
                                                       "_outbox": 0}))

    @api("GET", "/api/v1/ledger", query={"station": str, "member": str, "year": int},
         summary="诉求台账")
    def ledger(self, request):
        rows = self.ledger_rows(request)
        return {"count": len(rows), "items": [self.request_view(r, request.principal)
                                              for r in rows]}

    @api("GET", "/api/v1/ledger.xlsx", query={"station": str, "member": str, "year": int},
         content_type=XLSX, summary="诉求台账（Excel）")
    def ledger_xlsx(self, request):
        rows = self.ledger_rows(request)
        names = {s["_id"]: s["name"] for s in self.store.all("stations", None, {"name": 1})}
        members = self.member_names(r["member_id"] for r in rows if r.get("member_id"))
        body = workbook([("诉求台账", [c for c, _ in LEDGER_COLUMNS],
                          (ledger_row(r, names, members) for r in rows))])
        return xlsx_response(body, "群众诉求台账.xlsx")


def with_id(view):
    view["id"] = view.pop("_id")
    return view


def ledger_row(r, names, members):
    values = dict(r, station=names.get(r["station_id"], r["station_id"]),
                  category=citizen.CATEGORIES.get(r["category"]),
                  state=citizen.STATE_LABELS[r["state"]],
                  member=members.get(r.get("member_id"), r.get("member_id")),
                  resolved={1: "是", 0: "否"}.get(r.get("resolved")),
                  on_time={1: "是", 0: "否"}.get(r.get("on_time")),
                  rating=(r.get("rating") or {}).get("score"),
                  escalation=(r.get("escalation") or {}).get("target_id"))
    return [values.get(k) for _, k in LEDGER_COLUMNS]
