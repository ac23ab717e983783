"""Liaison service: stations, citizen requests, consultations and 社情民意 over
HTTP (port 8003). Thin: the rules are in stations.py, citizen.py, consult.py
and opinions.py."""
import uuid
from datetime import timedelta

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer
from pymongo.errors import DuplicateKeyError

from services.common import service as platform
from services.common.http import (api, json_body, moment_param, page, page_params,
                                  query_args)
from services.common import linkage, rollup
from services.common.auth import Principal
from services.common.config import platform_data
from services.common.inbox import idempotent
from services.common.linkage import linked_handler
from services.common.messaging import event_handler
from services.common.mongo import Mongo
from services.common.outbox import OutboxRelay, strip_internal
from services.common.problems import Conflict, Forbidden, Invalid, NotFound, Unavailable
from services.common import rpc as rpc_clients
from services.common.xlsx import workbook, xlsx_response

from . import citizen, consult, history_import, opinions, stations, stats, tasks
from . import events  # noqa: F401  the event registry Change.event checks
from .schemas import (CONSULTATION_ACTIONS, OPINION_ACTIONS, REQUEST_ACTIONS, TASK_ACTIONS,
                      activity_in, assignment_in, consultation_in, opinion_in, reception_in,
                      request_in, station_in, station_patch, task_in)
from .store import INDEXES, LiaisonStore

STAFF = ("admin", "reviewer")
LEDGER_COLUMNS = [("编号", "_id"), ("站点", "station"), ("类别", "category"), ("事项", "title"),
                  ("状态", "state"), ("承办委员", "member"), ("登记时间", "filed_at"),
                  ("派单时间", "dispatched_at"), ("接单时间", "accepted_at"),
                  ("办结时间", "closed_at"), ("办理结果", "result"), ("是否解决", "resolved"),
                  ("按期办结", "on_time"), ("评价", "rating"), ("转化", "escalation")]


def _new_id(prefix):
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def action_input(schemas, action, request):
    """The validated body of ``action``; an unknown action is a 404."""
    schema = schemas.get(action)
    if schema is None:
        raise NotFound(f"未知的操作 {action}", allowed_actions=sorted(schemas))
    return schema.load_or_raise(json_body(request))


def with_id(view):
    view["id"] = view.pop("_id")
    return view


def rollup_figures(db, year):
    """This year's liaison figures (社情民意 included) as the city sees them."""
    store, by_year = LiaisonStore(db), {"year": year}
    return stats.compute(
        year, list(store.all("requests", by_year, {"history": 0, "contact": 0})),
        list(store.all("consultations", by_year)),
        list(store.all("opinions", by_year, {"versions": 0})), store.stations_by_id())


class LiaisonService(rpc_clients.MembersLookup, rollup.Receiver, platform.PlatformService):
    name = "liaison"
    rollup_kind = "liaison"

    db = Mongo(indexes=INDEXES)
    outbox = OutboxRelay("stations", "requests", "consultations", "opinions", "tasks",
                         rollup.ROLLUPS)
    figures_rollup = rollup.StatisticsRollup("liaison", rollup_figures)
    members = RpcProxy("members")

    @property
    def store(self):
        return LiaisonStore(self.db)

    @property
    def settings(self):
        return self.config.get("LIAISON") or {}

    @property
    def places(self):
        """``LIAISON.places`` if set, else this platform's places file."""
        places = self.settings.get("places")
        if places is None:
            places = platform_data("places", self.identity.org_code, self.config)
        return stations.Places.from_config(places)

    @property
    def room_minimum(self):
        return int(self.settings.get("room_min_members", 2))

    def request_rules(self):
        return citizen.RequestRules.from_config(self.settings.get("requests"))


    def apply(self, request, kind, doc, fields, events, actor=None, linked=()):
        """Store ``fields`` on ``doc`` with ``events`` (optimistic on ``seq``),
        and ``linked`` events ``(type, payload, to, via)`` for other platforms."""
        evs = self.change(request, actor=actor).batch(doc["_id"], doc["seq"], events, linked)
        if fields or evs:
            self.store.aggregates(kind).change(doc["_id"], doc["seq"], fields, evs)
        return self.store.require(kind, doc["_id"])

    def create(self, request, kind, doc, events, actor=None, linked=()):
        self.store.aggregates(kind).create(
            doc, self.change(request, actor=actor).batch(doc["_id"], 0, events, linked))
        return self.store.require(kind, doc["_id"])

    def received_copy(self, kind, doc, events, origin):
        """This platform's copy of another platform's item (once)."""
        self.store.aggregates(kind).create_once(
            doc, self.change(actor=f"org:{origin}").batch(doc["_id"], 0, events))

    @staticmethod
    def expected_seq(doc, data):
        expected = data.pop("seq", None)
        if expected is not None and expected != doc["seq"]:
            raise Conflict("记录已被他人修改，请刷新后重试", current_seq=doc["seq"],
                           current_state=doc.get("state"))
        return doc

    # --- places and stations ------------------------------------------------
    @api("GET", "/api/v1/places")
    def list_places(self, request):
        return {"items": list(self.places.by_code.values())}

    def station_view(self, doc, principal):
        """A station; its contact people only for the office and its own staff."""
        out = strip_internal(doc)
        if not (principal.has_any(STAFF) or doc["_id"] in principal.ids("station")):
            out.pop("contacts", None)
        out["id"] = out.pop("_id")
        out["kind_label"] = stations.KINDS[doc["kind"]]
        out["meets_minimum"] = bool(doc.get("meets_minimum"))
        out["minimum"] = stations.minimum_for(doc, self.room_minimum)
        return out

    def station_changed(self, request, doc, fields, events):
        return self.station_view(self.apply(request, "stations", doc, fields, events),
                                 request.principal)

    @api("POST", "/api/v1/stations", roles=("admin",))
    def create_station(self, request):
        data = station_in.load_or_raise(json_body(request))
        station_id = data.pop("id") or _new_id("ST")
        if self.store.get("stations", station_id) is not None:
            raise Conflict(f"站点编码 {station_id} 已存在")
        doc, events = stations.new_station(
            data, station_id=station_id, places=self.places, org=self.identity.org_code,
            members_found=self.active_members(data.get("members") or ()),
            room_minimum=self.room_minimum)
        doc = self.create(request, "stations", doc, events)
        return 201, {"Location": f"/api/v1/stations/{station_id}"}, self.station_view(
            doc, request.principal)

    @api("GET", "/api/v1/stations")
    def list_stations(self, request):
        limit, after = page_params(request, default=100)
        args = query_args(request, ("kind", "township", "place_code", "member",
                                     "below_minimum"), ints=("below_minimum",))
        query = {k: args[k] for k in ("kind", "township", "place_code") if k in args}
        if "member" in args:
            query["members"] = args["member"]
        if "below_minimum" in args:   # a deactivated station needs no members
            query.update(meets_minimum=0 if args["below_minimum"] else 1, active=1)
        docs = self.store.page("stations", query, limit, after)
        return page([self.station_view(d, request.principal) for d in docs], limit)

    @api("GET", "/api/v1/stations/<string:station_id>")
    def get_station(self, request, station_id):
        return self.station_view(self.store.require("stations", station_id),
                                 request.principal)

    @api("PATCH", "/api/v1/stations/<string:station_id>", roles=("admin",))
    def update_station(self, request, station_id):
        data = station_patch.load_or_raise(json_body(request))
        doc = self.expected_seq(self.store.require("stations", station_id), data)
        if "active" in data:
            data["active"] = int(data["active"])
        fields = {k: v for k, v in data.items() if doc.get(k) != v}
        events = [("station.updated", stations.payload(dict(doc, **fields),
                                                       changed=sorted(fields)))] if fields else []
        return self.station_changed(request, doc, fields, events)

    @api("POST", "/api/v1/stations/<string:station_id>/members", roles=("admin",))
    def assign_member(self, request, station_id):
        data = assignment_in.load_or_raise(json_body(request))
        doc = self.store.require("stations", station_id)
        member = data["member_id"]
        fields, events = stations.assign(
            doc, member, room_minimum=self.room_minimum,
            active_member=member in self.active_members([member]))
        return self.station_changed(request, doc, fields, events)

    @api("DELETE", "/api/v1/stations/<string:station_id>/members/<string:member_id>",
         roles=("admin",))
    def unassign_member(self, request, station_id, member_id):
        doc = self.store.require("stations", station_id)
        fields, events = stations.unassign(doc, member_id, room_minimum=self.room_minimum)
        return self.station_changed(request, doc, fields, events)

    def staff_station(self, request, station_id):
        doc = self.store.require("stations", station_id)
        if not stations.is_staff(request.principal, station_id):
            raise Forbidden("只有本站点工作人员或政协办公室可以操作")
        return doc

    @api("POST", "/api/v1/stations/<string:station_id>/reception-days")
    def schedule_reception(self, request, station_id):
        data = reception_in.load_or_raise(json_body(request))
        doc = self.staff_station(request, station_id)
        fields, events = stations.schedule_reception(doc, data, today=self.today())
        return 201, {}, self.station_changed(request, doc, fields, events)

    @api("POST", "/api/v1/stations/<string:station_id>/activities")
    def hold_activity(self, request, station_id):
        data = activity_in.load_or_raise(json_body(request))
        doc = self.staff_station(request, station_id)
        activity_id = _new_id("AC")
        fields, events = stations.hold_activity(doc, data, activity_id=activity_id,
                                                today=self.today())
        self.apply(request, "stations", doc, fields, events)
        return 201, {}, {"activity_id": activity_id, "station_id": station_id,
                         "members": data["members"], "date": data["date"].isoformat()}

    @api("GET", "/api/v1/members/<string:member_id>/stations")
    def member_stations(self, request, member_id):
        p = request.principal
        if not (p.has_any(STAFF) or member_id in p.ids("member")):
            raise Forbidden("当前角色无权查看")
        return {"member_id": member_id,
                "items": [self.station_view(s, request.principal)
                          for s in self.store.stations_of_member(member_id)]}

    # --- citizen requests -------------------------------------------------------
    def request_scope(self, principal):
        if principal.has_any(STAFF):
            return None
        ors = [{"station_id": s} for s in sorted(principal.ids("station"))] + \
              [{"member_id": m} for m in sorted(principal.ids("member"))]
        if "citizen" in principal.roles:
            ors.append({"filed_by": principal.sub})
        if not ors:
            raise Forbidden("当前角色无权查看群众诉求")
        return ors[0] if len(ors) == 1 else {"$or": ors}

    def visible_request(self, request, request_id):
        doc = self.store.get("requests", request_id)
        p = request.principal
        if doc is None or not (
                p.has_any(STAFF) or doc["station_id"] in p.ids("station")
                or doc.get("member_id") in p.ids("member")
                or ("citizen" in p.roles and doc["filed_by"] == p.sub)):
            raise NotFound(f"诉求 {request_id} 不存在")
        return doc

    @staticmethod
    def request_view(doc, principal):
        return with_id(citizen.view(strip_internal(doc), principal))

    @api("POST", "/api/v1/requests")
    def file_request(self, request):
        data = request_in.load_or_raise(json_body(request))
        station = self.store.get("stations", data["station_id"])
        if station is None or not station.get("active"):
            raise Invalid({"station_id": ["站点不存在或已停用"]})
        if data.get("place_code") and self.places.get(data["place_code"]) is None:
            raise Invalid({"place_code": ["不是本平台的乡镇或村（社区）编码"]})
        doc, events = citizen.new_request(
            data, request.principal, request_id=_new_id("RQ"), station=station,
            org=self.identity.org_code, now=self.now(), rules=self.request_rules())
        doc = self.create(request, "requests", doc, events)
        return 201, {"Location": f"/api/v1/requests/{doc['_id']}"}, self.request_view(
            doc, request.principal)

    @api("GET", "/api/v1/requests")
    def list_requests(self, request):
        limit, after = page_params(request)
        args = query_args(request, ("station", "member", "state", "year", "category"))
        if args.get("state") and args["state"] not in citizen.STATE_LABELS:
            raise Invalid({"state": ["未知的状态"]})
        query = {{"station": "station_id", "member": "member_id"}.get(k, k): v
                 for k, v in args.items()}
        scope = self.request_scope(request.principal)
        if scope:
            query = {"$and": [query, scope]} if query else scope
        docs = self.store.page("requests", query, limit, after)
        return page([self.request_view(d, request.principal) for d in docs], limit)

    @api("GET", "/api/v1/requests/<string:request_id>")
    def read_request(self, request, request_id):
        return self.request_view(self.visible_request(request, request_id), request.principal)

    @api("GET", "/api/v1/requests/<string:request_id>/suggestions")
    def suggestions(self, request, request_id):
        doc = self.visible_request(request, request_id)
        if not stations.is_staff(request.principal, doc["station_id"]):
            raise Forbidden("只有本站点工作人员或政协办公室可以派单")
        nearby = list(self.store.all("stations", {"township": doc["township"], "active": 1}))
        ids = sorted({m for s in nearby for m in s["members"]})
        found = self.active_members(ids)
        ranked = citizen.suggest_members(doc, nearby, found, self.store.member_load(set(ids)),
                                         self.request_rules())
        return {"request_id": request_id, "items": ranked}

    @api("POST", "/api/v1/requests/<string:request_id>/actions/<string:action>")
    def act_on_request(self, request, request_id, action):
        data = action_input(REQUEST_ACTIONS, action, request)
        doc = self.expected_seq(self.visible_request(request, request_id), data)
        actor = request.principal
        citizen.FLOW.check(doc, action, actor)
        active = None
        if action == "dispatch":
            active = data["member_id"] in self.active_members([data["member_id"]])
        if action == "escalate":
            citizen.check_escalation(doc)
            data["target_id"] = self.escalation_target(request, doc, data)
        fields, events = citizen.act(doc, action, data, actor, now=self.now(),
                                     rules=self.request_rules(), member_active=active)
        return self.request_view(self.apply(request, "requests", doc, fields, events), actor)

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
                self.create(request, "opinions", item, events)
            except DuplicateKeyError:  # a retry of the same escalation
                pass
        return opinion_id

    @timer(interval=600)
    def scheduled_scan(self):
        self.scan_requests(self.now())

    @api("POST", "/api/v1/requests/scan", roles=("admin",))
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
            fields, events = citizen.scan(r, now, office_after=after)
            if not events:
                continue
            try:
                self.apply(None, "requests", r, fields, events, actor="system:scan")
                report["overdue"] += 1
            except Conflict:
                report["conflicts"] += 1
        return report

    # --- ledger (台账) ------------------------------------------------------------
    def ledger_rows(self, request):
        args = query_args(request, ("station", "member", "year"))
        p = request.principal
        if not (p.has_any(STAFF) or args.get("station") in p.ids("station")
                or args.get("member") in p.ids("member")):
            raise Forbidden("只能查看本站点或本人的台账")
        query = {{"station": "station_id", "member": "member_id"}.get(k, k): v
                 for k, v in args.items()}
        return list(self.store.all("requests", query, {"contact": 0, "history": 0,
                                                       "_outbox": 0}))

    @api("GET", "/api/v1/ledger")
    def ledger(self, request):
        rows = self.ledger_rows(request)
        return {"count": len(rows), "items": [self.request_view(r, request.principal)
                                              for r in rows]}

    @api("GET", "/api/v1/ledger.xlsx")
    def ledger_xlsx(self, request):
        rows = self.ledger_rows(request)
        names = {s["_id"]: s["name"] for s in self.store.all("stations", None, {"name": 1})}
        members = self.member_names(r["member_id"] for r in rows if r.get("member_id"))
        body = workbook([("诉求台账", [c for c, _ in LEDGER_COLUMNS],
                          (ledger_row(r, names, members) for r in rows))])
        return xlsx_response(body, "群众诉求台账.xlsx")

    # --- consultations (协商议事) ----------------------------------------------------
    @api("POST", "/api/v1/consultations")
    def create_consultation(self, request):
        data = consultation_in.load_or_raise(json_body(request))
        station = self.store.get("stations", data["station_id"]) if data.get("station_id") \
            else None
        doc, events = consult.new_consultation(
            data, request.principal, consultation_id=_new_id("CS"), org=self.identity.org_code,
            station=station, members_found=self.active_members(data["members"]),
            today=self.today())
        doc = self.create(request, "consultations", doc, events)
        return 201, {"Location": f"/api/v1/consultations/{doc['_id']}"}, self.consultation_view(
            doc, request.principal)

    @staticmethod
    def consultation_view(doc, principal):
        return with_id(consult.FLOW.view(strip_internal(doc), principal))

    @api("GET", "/api/v1/consultations")
    def list_consultations(self, request):
        limit, after = page_params(request)
        args = query_args(request, ("state", "source", "station", "year"))
        query = {{"station": "station_id"}.get(k, k): v for k, v in args.items()}
        docs = self.store.page("consultations", query, limit, after)
        return page([self.consultation_view(d, request.principal) for d in docs], limit)

    @api("GET", "/api/v1/consultations/<string:consultation_id>")
    def read_consultation(self, request, consultation_id):
        return self.consultation_view(self.store.require("consultations", consultation_id),
                                      request.principal)

    @api("POST", "/api/v1/consultations/<string:consultation_id>/actions/<string:action>")
    def act_on_consultation(self, request, consultation_id, action):
        data = action_input(CONSULTATION_ACTIONS, action, request)
        doc = self.expected_seq(self.store.require("consultations", consultation_id), data)
        consult.FLOW.check(doc, action, request.principal)
        followup_id = data.pop("followup_id", None) or (
            f"F{len(doc['followups']) + 1}" if action == "add_followup" else None)
        found = self.active_members(data.get("members") or ()) if action == "advance" else {}
        fields, events = consult.act(doc, action, data, request.principal, today=self.today(),
                                     followup_id=followup_id, members_found=found)
        return self.consultation_view(
            self.apply(request, "consultations", doc, fields, events), request.principal)

    # --- 社情民意 --------------------------------------------------------------------
    def visible_opinion(self, request, opinion_id):
        doc = self.store.get("opinions", opinion_id)
        if doc is None or not opinions.may_see(doc, request.principal):
            raise NotFound(f"社情民意 {opinion_id} 不存在")
        return doc

    @staticmethod
    def opinion_view(doc, principal):
        return with_id(opinions.FLOW.view(strip_internal(doc), principal))

    @api("POST", "/api/v1/opinions")
    def submit_opinion(self, request):
        data = opinion_in.load_or_raise(json_body(request))
        station = self.store.get("stations", data["station_id"]) if data.get("station_id") \
            else None
        own = sorted(request.principal.ids("member"))
        author = data.get("author_member") or (own[0] if own else None)
        doc, events = opinions.new_opinion(
            data, request.principal, opinion_id=_new_id("OP"), org=self.identity.org_code,
            today=self.today(), members_found=self.active_members([author]), station=station)
        doc = self.create(request, "opinions", doc, events)
        return 201, {"Location": f"/api/v1/opinions/{doc['_id']}"}, self.opinion_view(
            doc, request.principal)

    @api("GET", "/api/v1/opinions")
    def list_opinions(self, request):
        limit, after = page_params(request)
        args = query_args(request, ("state", "year", "author", "station"))
        query = {{"author": "author_member", "station": "station_id"}.get(k, k): v
                 for k, v in args.items()}
        p = request.principal
        if not p.has_any(STAFF):
            ors = [{"author_member": m} for m in sorted(p.ids("member"))] + \
                  [{"station_id": s} for s in sorted(p.ids("station"))]
            if not ors:
                raise Forbidden("当前角色无权查看社情民意")
            scope = ors[0] if len(ors) == 1 else {"$or": ors}
            query = {"$and": [query, scope]} if query else scope
        docs = self.store.page("opinions", query, limit, after)
        return page([self.opinion_view(d, p) for d in docs], limit)

    @api("GET", "/api/v1/opinions/<string:opinion_id>")
    def read_opinion(self, request, opinion_id):
        return self.opinion_view(self.visible_opinion(request, opinion_id), request.principal)

    @api("POST", "/api/v1/opinions/<string:opinion_id>/actions/<string:action>")
    def act_on_opinion(self, request, opinion_id, action):
        data = action_input(OPINION_ACTIONS, action, request)
        doc = self.expected_seq(self.visible_opinion(request, opinion_id), data)
        opinions.FLOW.check(doc, action, request.principal)
        today = self.today()
        issue_no = data.pop("issue_no", None)
        if action == "issue" and issue_no is None:
            issue_no = self.store.next_number(f"opinion-issue-{today.year}")
        fields, events = opinions.act(
            doc, action, data, request.principal, today=today,
            own_level=self.identity.org_level, parent_org=self.identity.parent_org,
            orgs=self.settings.get("upper_orgs") or {}, issue_no=issue_no,
            instruction_id=_new_id("IN") if action == "instruct" else None)
        linked = self.linked_opinion_events(doc, action, data, fields)
        return self.opinion_view(self.apply(request, "opinions", doc, fields, events,
                                            linked=linked), request.principal)

    def linked_opinion_events(self, doc, action, data, fields):
        """Reported to the parent platform: the item goes up the link; a step
        the parent takes on an item from a county: feedback goes down."""
        out = []
        reported = (fields.get("reported") or {}).get(data.get("level") or "")
        # counties reach their city over the link; a city reaches the province
        # through the provincial adapter, not federation
        parent = self.identity.uplink
        if action == "report" and parent and reported and reported["target_org"] == parent:
            author = doc.get("author_member")
            try:  # the name is a courtesy: reporting works with the broker down
                name = self.member_names([author]).get(author) if author else None
            except Unavailable:
                name = None
            new = dict(doc, **fields)
            out.append(("opinion.forwarded", dict(
                opinions.payload(new), content=new["content"], author_name=name,
                level=data["level"]), parent, linkage.UP))
        back = opinions.feedback(dict(doc, **fields), action, data)
        if back:
            out.append(("opinion.feedback", back[1], back[0], linkage.DOWN))
        return out

    @linked_handler(linkage.UP, "opinion.forwarded")
    @idempotent("liaison.on_opinion_forwarded")
    def on_opinion_forwarded(self, event):
        """社情民意 a county reported up: into this platform's intake."""
        p = event["payload"]
        doc, events = opinions.received(p, origin=event["origin"],
                                        opinion_id=f"{event['origin']}-{p['opinion_id']}",
                                        org=self.identity.org_code, today=self.today())
        self.received_copy("opinions", doc, events, event["origin"])

    @linked_handler(linkage.DOWN, "opinion.feedback")
    @idempotent("liaison.on_opinion_feedback")
    def on_opinion_feedback(self, event):
        """The parent platform reported further, adopted or instructed an item
        of ours: the same step on the original, which credits its author."""
        p = event["payload"]
        doc = self.store.require("opinions", p["opinion_id"])
        data = {k: p[k] for k in ("level", "leader", "text", "note") if p.get(k)}
        if p["action"] == "report" and p["level"] in doc["reported"] or \
                p["action"] == "adopt" and p["level"] in doc["adopted"]:
            return  # already recorded
        actor = Principal(sub=f"org:{event['origin']}", org=self.identity.org_code,
                          roles=("admin",))
        fields, events = opinions.act(
            doc, p["action"], data, actor, today=self.today(),
            own_level=self.identity.org_level, parent_org=self.identity.parent_org,
            orgs=self.settings.get("upper_orgs") or {},
            instruction_id=f"IN-{event['event_id'][:12]}")
        self.apply(None, "opinions", doc, fields, events, actor=f"org:{event['origin']}")

    # --- tasks between the city and its counties (三级联动, downward) ---------------
    def task_view(self, doc, principal):
        return with_id(tasks.FLOW.view(tasks.view(strip_internal(doc), self.today()), principal))

    @api("POST", "/api/v1/tasks", roles=("admin",))
    def create_task(self, request):
        """A task for the linked counties: one linked ``task.assigned`` each."""
        data = task_in.load_or_raise(json_body(request))
        doc, events, linked = tasks.new_task(
            data, task_id=f"{self.identity.org_code}-{_new_id('T')}",
            org=self.identity.org_code, children=self.identity.child_names, today=self.today())
        doc = self.create(request, "tasks", doc, events,
                          linked=[(t, body, to, linkage.DOWN) for t, body, to in linked])
        return 201, {"Location": f"/api/v1/tasks/{doc['_id']}"}, self.task_view(
            doc, request.principal)

    @api("GET", "/api/v1/tasks", roles=STAFF)
    def list_tasks(self, request):
        """``direction=sent`` (given to counties) or ``received`` (from the city)."""
        limit, after = page_params(request)
        args = query_args(request, ("state", "kind", "year", "direction"))
        direction = args.pop("direction", None)
        if direction not in (None, "sent", "received"):
            raise Invalid({"direction": ["取值应为 sent 或 received"]})
        if direction:
            args["source"] = {"$exists": direction == "received"}
        docs = self.store.page("tasks", args, limit, after)
        return page([self.task_view(d, request.principal) for d in docs], limit)

    @api("GET", "/api/v1/tasks/<string:task_id>", roles=STAFF)
    def read_task(self, request, task_id):
        return self.task_view(self.store.require("tasks", task_id), request.principal)

    @api("POST", "/api/v1/tasks/<string:task_id>/actions/<string:action>")
    def act_on_task(self, request, task_id, action):
        data = action_input(TASK_ACTIONS, action, request)
        doc = self.expected_seq(self.store.require("tasks", task_id), data)
        tasks.FLOW.check(doc, action, request.principal)
        fields, events, linked = tasks.act(doc, action, data, today=self.today())
        return self.task_view(self.apply(request, "tasks", doc, fields, events, linked=[
            (t, body, to, linkage.UP) for t, body, to in linked]), request.principal)

    @linked_handler(linkage.DOWN, "task.assigned")
    @idempotent("liaison.on_task_assigned")
    def on_task_assigned(self, event):
        doc, events = tasks.received(event["payload"], origin=event["origin"],
                                     org=self.identity.org_code, today=self.today())
        self.received_copy("tasks", doc, events, event["origin"])

    @linked_handler(linkage.UP, "task.progressed")
    @idempotent("liaison.on_task_progressed")
    def on_task_progressed(self, event):
        """A county accepted or reported on a task: onto its target (a
        Conflict with another county's report retries the delivery)."""
        task = self.store.require("tasks", event["payload"]["task_id"])
        fields, events = tasks.progressed(task, event["origin"], event["payload"])
        if fields:
            self.apply(None, "tasks", task, fields, events, actor=f"org:{event['origin']}")

    # --- import of past work -----------------------------------------------------
    @api("POST", "/api/v1/liaison/import", roles=("admin",))
    def import_history(self, request):
        body = json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise Invalid({"records": ["必须是记录列表"]})
        ctx = history_import.Context(
            org=self.identity.org_code, own_level=self.identity.org_level,
            parent_org=self.identity.parent_org, orgs=self.settings.get("upper_orgs") or {},
            rules=self.request_rules(), stations=self.store.stations_by_id(),
            members=self.active_members(sorted(history_import.member_ids(records))),
            next_issue=lambda year: self.store.next_number(f"opinion-issue-{year}"))
        docs, report = history_import.replay(records, ctx, self.store.get)
        for doc in (d for k, d, _ in docs if k == "opinions" and d.get("issue")):
            self.store.raise_counter(f"opinion-issue-{doc['issue']['year']}",
                                     doc["issue"]["number"])
        change = self.change(request)
        # replayed facts feed the 履职档案 and the figures; ``imported`` tells
        # notify that nobody is to be told of work finished months ago
        for kind in ("requests", "consultations", "opinions"):
            self.store.aggregates(kind).create_many([
                (doc, [change.event(t, doc["_id"], i + 1, dict(body, imported=True))
                       for i, (t, body) in enumerate(events)])
                for k, doc, events in docs if k == kind])
        return report

    # --- statistics -------------------------------------------------------------------
    @api("GET", "/api/v1/liaison/statistics", roles=STAFF)
    def statistics(self, request):
        args = query_args(request, ("year",))
        return rollup_figures(self.db, args.get("year") or self.today().year)

    @api("GET", "/api/v1/liaison/statistics/counties", roles=STAFF)
    def county_statistics(self, request):
        """Each linked county's liaison and 社情民意 figures, kept current by
        its roll-up."""
        year = query_args(request, ("year",)).get("year") or self.today().year
        return {"year": year, "items": self.county_figures(year)}

    # --- events from members -------------------------------------------------------
    @event_handler("members", "member.removed")
    @idempotent("liaison.on_member_removed")
    def on_member_removed(self, event):
        self.member_left(event)

    @event_handler("members", "member.term_ended")
    @idempotent("liaison.on_member_term_ended")
    def on_member_term_ended(self, event):
        self.member_left(event)

    def member_left(self, event):
        """Unassign the member everywhere; their open requests go back to dispatch."""
        member_id = event["payload"]["member"]["member_id"]
        reason = event["payload"].get("status") or "removed"
        actor = f"system:{event['type']}"
        for s in self.store.stations_of_member(member_id):
            fields, events = stations.unassign(s, member_id, room_minimum=self.room_minimum,
                                               reason=reason)
            self.apply(None, "stations", s, fields, events, actor=actor)
        rules, now = self.request_rules(), self.now()
        for r in list(self.store.all("requests", {"member_id": member_id})):
            fields, events = citizen.return_to_dispatch(r, now=now, rules=rules,
                                                        reason=f"委员{event['payload'].get('reason') or '离任'}")
            if events:
                self.apply(None, "requests", r, fields, events, actor=actor)

    # --- RPC ---------------------------------------------------------------------
    @rpc
    def get_station_contacts(self, station_id):
        """Contacts for a notification being sent now; never stored by the caller."""
        doc = self.store.get("stations", station_id)
        return {"station_id": station_id, "name": doc["name"],
                "contacts": doc.get("contacts") or []} if doc else None

    @rpc
    def get_request_contact(self, request_id):
        """A citizen's recorded contact, for telling them their request was
        closed, fetched by notify at send time and never stored by it."""
        doc = self.store.get("requests", request_id)
        if not doc or not doc.get("contact"):
            return None
        return dict(citizen.contact_addresses(doc["contact"]), request_id=request_id)

    @rpc
    def station_info(self, station_id):
        doc = self.store.get("stations", station_id)
        return stations.payload(doc, members=doc["members"]) if doc else None

    @rpc
    def get_member_stations(self, member_id):
        return [s["_id"] for s in self.store.stations_of_member(member_id)]


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
