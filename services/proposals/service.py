"""Proposals service: the 提案 lifecycle over HTTP (port 8002), the unit
directory, routing suggestions, deadline scans and statistics."""
import logging
import uuid

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from services.common import linkage, rollup, service as platform
from services.common.lease import duty
from services.common.rpc import answers_only
from services.common.decisions import Decision
from services.common.http import api, moment_param, page, page_params, small_int
from services.common.inbox import idempotent
from services.common.linkage import linked_handler
from services.common.messaging import event_handler
from services.common.mongo import Mongo
from services.common.observability import CALENDAR_UNCOVERED_YEARS
from prometheus_client import Gauge
from services.common.outbox import OutboxRelay, strip_internal
from services.common.problems import Conflict, Forbidden, Invalid, Unavailable
from services.common.signing import Refused
from services.common.xlsx import XLSX, workbook, xlsx_response
from services.members.client import MembersLookup

from . import domain, history_import, statistics, unit_suggestions
from .domain import PROPOSALS, UNITS
from .events import EVENTS  # noqa: F401  the event registry Change.event checks
from .schemas import (ACTIONS, ProposalView, UnitView, import_in, proposal_in, unit_in,
                      unit_patch)
from .store import FILTERS, INDEXES, INT_FILTERS, ProposalStore

QUERY = {k: int if k in INT_FILTERS else str for k in FILTERS}

log = logging.getLogger(__name__)

STAFF = ("admin", "reviewer")
LIST_COLUMNS = [("提案号", "number"), ("案由", "title"), ("类型", "type"), ("提案人", "proposer"),
                ("类别", "category"), ("状态", "state"), ("主办单位", "lead_unit"),
                ("协办单位", "co_units"), ("答复类别", "answer_category"),
                ("评价", "evaluation"), ("重点提案", "key"), ("按期办复", "on_time"),
                ("提交日期", "submitted_at"), ("交办日期", "assigned_at"),
                ("答复期限", "answer_due"), ("办结日期", "closed_at")]


def rollup_figures(db, year):
    """This year's figures as the city sees them (no printed table)."""
    figures = statistics.compute(ProposalStore(db).for_period(year), year)
    figures.pop("table")
    return figures


OVERDUE = Gauge("zhzx_proposals_overdue", "Proposals past a deadline (as of the last scan)")


class ProposalsService(MembersLookup, rollup.Receiver, platform.PlatformService):
    name = "proposals"
    rollup_kind = "proposals"

    db = Mongo(indexes=INDEXES)
    outbox = OutboxRelay("proposals", "units", rollup.ROLLUPS)
    figures_rollup = rollup.StatisticsRollup("proposals", rollup_figures)
    members = RpcProxy("members")

    @property
    def store(self):
        return ProposalStore(self.db)

    @property
    def settings(self):
        return self.config.get("PROPOSALS") or {}

    def rules(self):
        return domain.Rules.from_config(self.settings)

    @staticmethod
    def actor(request):
        return domain.Actor.of(request.principal.sub, request.principal.roles)

    # --- helpers ------------------------------------------------------------
    def proposer_names(self, docs):
        return self.member_names(d["lead_member"] for d in docs if d.get("lead_member"))

    def visible(self, request, proposal_id):
        return PROPOSALS.load(self.db, proposal_id, request.principal)

    def view(self, doc, request, full=False):
        out = strip_internal(doc)
        out["id"] = out.pop("_id")
        out["state_label"] = domain.STATE_LABELS[doc["state"]]
        if not request.principal.has_any(STAFF):
            out.pop("review", None)
            out.pop("history", None)
        actor = self.actor(request)
        if "answers" in out:
            out["answers"] = domain.shown_answers(doc, actor)
        out["allowed_actions"] = domain.actions_for(doc, actor, self.today())
        if full:   # only a registered proposal (it has a number) can be merged into
            out["merged_from"] = self.store.merged_from(doc["_id"]) if doc.get("number") else []
        return out

    def similar_to(self, doc):
        pool = self.store.similarity_pool(exclude=doc["_id"])
        threshold = float(self.settings.get("similarity_threshold", 0.45))
        hits = unit_suggestions.similar(unit_suggestions.proposal_text(doc),
                               [(d["_id"], unit_suggestions.proposal_text(d)) for d in pool], threshold)
        by_id = {d["_id"]: d for d in pool}
        return [dict(h, title=by_id[h["proposal_id"]].get("title"),
                     number=by_id[h["proposal_id"]].get("number"),
                     state=by_id[h["proposal_id"]]["state"]) for h in hits]

    def similar_for(self, request, doc):
        """Similar proposals for the office (merge candidates); None for anyone
        else: the list names proposals a member may not read."""
        return self.similar_to(doc) if request.principal.has_any(STAFF) else None

    def context(self, action, p, data):
        ctx = domain.Context()
        if action in ("submit", "resubmit") and p["kind"] == "member":
            ctx.members = self.lookup_members([p["lead_member"]])
        if action in ("assign", "reassign"):
            ctx.units = self.store.active_units()
        if action in ("propose", "decide"):
            target = domain.merge_target_id(p, data)
            ctx.merge_target = self.store.get(target) if target else None
            ctx.next_number = lambda: self.store.next_number(self.today().year)
            ctx.parent_org = self.identity.parent_org
        return ctx

    # --- proposals ------------------------------------------------------------
    @api("POST", "/api/v1/proposals", query={}, body=proposal_in, response=ProposalView,
         status=201, summary="提出提案（草稿）")
    def create(self, request):
        actor = self.actor(request)
        if not (actor.admin or actor.ids("member")):
            raise Forbidden("只有委员或政协办公室可以提出提案")
        data = request.input
        members = self.lookup_members([data.get("lead_member")] + data["cosigners"]
                                      + sorted(actor.ids("member")))
        doc, events = domain.new_proposal(
            data, actor, proposal_id=f"{self.identity.org_code}-{uuid.uuid4().hex[:12]}",
            org=self.identity.org_code, today=self.today(), members=members)
        similar = self.similar_for(request, doc)
        body = self.view(self.insert(request, PROPOSALS, doc, ({}, events)), request, full=True)
        if similar is not None:
            body["similar"] = similar
        return 201, {"Location": f"/api/v1/proposals/{doc['_id']}"}, body

    @api("GET", "/api/v1/proposals", query=QUERY, paged=200, response=ProposalView,
         summary="提案列表（按角色可见）")
    def list_proposals(self, request):
        limit, after = page_params(request)
        filters = self.filters(request)
        scope = PROPOSALS.visibility.query(request.principal)
        docs = self.store.search(filters, scope, limit, after)
        return page([self.view(d, request) for d in docs], limit)

    def filters(self, request):
        unknown = [k for k in request.args if k not in FILTERS + ("limit", "cursor")]
        errors = {k: ["不支持的查询参数"] for k in unknown}
        for k in INT_FILTERS:
            if k in request.args and not small_int(request.args[k]):
                errors[k] = ["必须是整数"]
        if request.args.get("state") and request.args["state"] not in domain.STATES:
            errors["state"] = ["未知的状态"]
        if errors:
            raise Invalid(errors)
        return {k: v for k, v in request.args.items() if k in FILTERS}

    @api("GET", "/api/v1/proposals/<string:proposal_id>", query={}, response=ProposalView,
         summary="提案详情")
    def read_proposal(self, request, proposal_id):
        return self.view(self.visible(request, proposal_id), request, full=True)

    @api("PATCH", "/api/v1/proposals/<string:proposal_id>", query={}, body=ACTIONS["update_draft"],
         response=ProposalView, summary="修改草稿")
    def update_draft(self, request, proposal_id):
        return self.act(request, proposal_id, "update_draft")

    @api("POST", "/api/v1/proposals/<string:proposal_id>/actions/<string:action>", query={},
         body=ACTIONS, response=ProposalView, summary="提案办理操作")
    def act(self, request, proposal_id, action):
        data = request.input

        def decide(p):
            fields, events = domain.act(p, action, data, self.actor(request), self.rules(),
                                        self.today(), self.context(action, p, data))
            return Decision(fields, events, self.linked_events(p, dict(p, **fields)))
        doc = self.command(request, PROPOSALS, proposal_id, decide,
                           expected=data.pop("seq", None))
        body = self.view(doc, request, full=True)
        if action in ("update_draft", "submit", "classify"):
            similar = self.similar_for(request, doc)
            if similar is not None:
                body["similar"] = similar
        return body

    @api("GET", "/api/v1/proposals/<string:proposal_id>/similar", roles=STAFF, query={},
         summary="相似提案（并案候选）")
    def similar(self, request, proposal_id):
        doc = self.store.require(proposal_id)
        return {"proposal_id": proposal_id, "items": self.similar_to(doc)}

    @api("GET", "/api/v1/proposals/<string:proposal_id>/routing", roles=STAFF, query={},
         summary="承办单位建议")
    def routing(self, request, proposal_id):
        doc = self.store.require(proposal_id)
        units = [dict(u, id=u["_id"]) for u in self.store.active_units().values()]
        past = [(unit_suggestions.proposal_text(d), lead, co)
                for d, lead, co in self.store.routing_history() if d["_id"] != proposal_id]
        ranked = unit_suggestions.suggest(unit_suggestions.proposal_text(doc), units, past, top=5)
        advice = unit_suggestions.routing_advice(ranked)
        advice["proposal_id"] = proposal_id
        advice["learned_from"] = len(past)
        return advice

    # --- history import, scan, statistics -------------------------------------
    @api("POST", "/api/v1/proposals/import", roles=("admin",), query={}, body=import_in,
         summary="导入历史提案")
    def import_history(self, request):
        records = request.input["proposals"]
        ids = set()
        for r in records:
            ids.add(r["proposal"].get("lead_member"))
            ids.update(r["proposal"].get("cosigners") or ())
            for a in r["actions"]:
                ids.update(x.split(":", 1)[1] for x in a["as_"] if x.startswith("member:"))
        members = self.lookup_members(sorted(i for i in ids if isinstance(i, str)))
        valid = []
        report_errors = []
        for i, r in enumerate(records):
            try:
                r["proposal"] = proposal_in.load_or_raise(r["proposal"])
                valid.append(r)
            except Invalid as exc:
                report_errors.append({"record": i, "ref": r["ref"], "action": None,
                                      "message": exc.detail, "errors": exc.errors})
        docs, report = history_import.replay(
            valid, org=self.identity.org_code, rules=self.rules(), members=members,
            units=self.store.active_units(), find_ref=self.store.by_ref,
            next_number=self.store.next_number, today=self.today())
        report["received"] = len(records)
        report["errors"] = report_errors + report["errors"]
        self.insert_many(request, PROPOSALS, [(doc, domain.imported(doc)) for doc in docs])
        return report

    @timer(interval=3600)
    @duty("deadline_scan")
    def scheduled_scan(self):
        self.calendar_gaps(log_them=True)
        self.scan_all(self.today())

    def calendar_gaps(self, log_them=False):
        """Years of the next 12 months the working-day calendar does not cover
        (metric ``zhzx_calendar_uncovered_years``; logged by the hourly scan)."""
        years = self.rules().calendar.uncovered_years(self.today())
        CALENDAR_UNCOVERED_YEARS.labels(self.name).set(len(years))
        if years and log_them:
            log.warning("working-day calendar has no public holidays for %s: deadlines "
                        "there count 春节 and 国庆 as working days; add the State Council's "
                        "notice to PROPOSALS.calendar", ", ".join(map(str, years)))
        return years

    def readiness_warnings(self):
        years = self.calendar_gaps()
        return [f"工作日历缺少 {y} 年的节假日安排，期限计算会把法定节假日当作工作日，请按国务院通知补充"
                for y in years]

    @api("POST", "/api/v1/proposals/scan", roles=("admin",), query={"today": str},
         summary="立即执行期限扫描（?today= 为演练）")
    def scan(self, request):
        """Runs the deadline scan now (the timer runs it hourly).
        ``?today=YYYY-MM-DD`` of another day is a drill: a dry run that reports
        what would be sent (``would_send``) and changes nothing, notifies
        nobody. Only a test configuration (``PROPOSALS.scan_drills_apply``)
        lets a drill act for real."""
        today = self.today()
        day = moment_param(request, "today", self.now()).date()
        applies = (self.config.get("PROPOSALS") or {}).get("scan_drills_apply")
        return self.scan_all(day, dry_run=day != today and not applies)

    def scan_all(self, today, dry_run=False):
        rules = self.rules()
        report = {"today": today.isoformat(), "scanned": 0, "reminders": 0, "overdue": 0,
                  "cosigning_closed": 0, "conflicts": 0, "dry_run": dry_run}
        if dry_run:
            report["would_send"] = []
        for p in self.store.scan_candidates():
            report["scanned"] += 1
            fields, events = domain.scan(p, rules, today)
            if not fields and not events:
                continue
            if dry_run:
                report["would_send"] += [
                    {"proposal_id": p["_id"], "type": t, "deadline": body.get("deadline"),
                     "working_days_left": body.get("working_days_left")}
                    for t, body in events]
            else:
                try:
                    self.commit(None, PROPOSALS, p, (fields, events), actor="system:scan")
                except Conflict:  # changed meanwhile: the next scan sees the new state
                    report["conflicts"] += 1
                    continue
            types = [t for t, _ in events]
            report["reminders"] += types.count("proposal.reminder_due")
            report["overdue"] += types.count("proposal.overdue")
            report["cosigning_closed"] += types.count("proposal.cosign_closed")
        if not dry_run:
            OVERDUE.set(self.db.proposals.count_documents({"overdue": 1}))
        return report

    def period(self, request):
        unknown = [k for k in request.args if k not in ("year", "session")]
        if unknown:
            raise Invalid({k: ["不支持的查询参数"] for k in unknown})
        year, session = request.args.get("year"), request.args.get("session")
        if year is not None and not (small_int(year) and 2000 <= int(year) <= 2100):
            raise Invalid({"year": ["年度应为四位数字"]})
        if session is None and year is None:
            year = str(self.today().year)
        return (int(year) if year and not session else None), session

    @api("GET", "/api/v1/proposals/statistics", roles=STAFF,
         query={"year": int, "session": str}, summary="提案统计")
    def statistics(self, request):
        year, session = self.period(request)
        return statistics.compute(self.store.for_period(year, session), year, session)

    @api("GET", "/api/v1/proposals/statistics/counties", roles=STAFF, query={"year": int},
         summary="各县提案统计（联动汇总）")
    def county_statistics(self, request):
        """Each linked county's proposal figures, kept current by its roll-up."""
        year = request.query.get("year") or self.today().year
        return {"year": year, "items": self.county_figures(year)}

    @api("GET", "/api/v1/proposals/statistics.xlsx", roles=STAFF,
         query={"year": int, "session": str}, content_type=XLSX, summary="提案统计表（Excel）")
    def statistics_xlsx(self, request):
        year, session = self.period(request)
        docs = self.store.for_period(year, session)
        figures = statistics.compute(docs, year, session)
        name = session or f"{year}年度"
        listed = [d for d in docs if d.get("submitted_at")]
        names, unit_names = self.proposer_names(listed), self.store.unit_names()
        body = workbook([(f"{name}提案统计"[:31], ["项目", "数量", "比例"], figures["table"]),
                         ("提案目录", [c for c, _ in LIST_COLUMNS],
                          (list_row(d, names, unit_names) for d in listed))])
        return xlsx_response(body, f"提案统计-{name}.xlsx")

    @api("GET", "/api/v1/proposals/export.xlsx", roles=STAFF, query=QUERY, content_type=XLSX,
         summary="提案目录（Excel）")
    def export(self, request):
        filters = self.filters(request)
        docs = list(self.store.all(self.store.query(filters), {"history": 0}))
        names, unit_names = self.proposer_names(docs), self.store.unit_names()
        body = workbook([("提案目录", [c for c, _ in LIST_COLUMNS],
                          (list_row(d, names, unit_names) for d in docs))])
        return xlsx_response(body, "提案目录.xlsx")

    # --- units (承办单位) --------------------------------------------------------
    @api("POST", "/api/v1/units", roles=("admin",), query={}, body=unit_in, response=UnitView,
         status=201, summary="新增承办单位")
    def create_unit(self, request):
        data = request.input
        unit_id = data.pop("id")
        if self.store.unit(unit_id) is not None:
            raise Conflict(f"承办单位编码 {unit_id} 已存在")
        doc, events = domain.new_unit(data, unit_id)
        return 201, {"Location": f"/api/v1/units/{unit_id}"}, self.unit_view(
            self.insert(request, UNITS, doc, ({}, events)), request)

    @api("GET", "/api/v1/units", query={"active": str}, paged=200, response=UnitView,
         summary="承办单位列表")
    def list_units(self, request):
        limit, after = page_params(request, default=100)
        active = request.args.get("active")
        docs = self.store.list_units(limit, after, None if active is None
                                     else active in ("1", "true"))
        return page([self.unit_view(d, request) for d in docs], limit)

    @api("GET", "/api/v1/units/<string:unit_id>", query={}, response=UnitView,
         summary="承办单位详情")
    def get_unit(self, request, unit_id):
        return self.unit_view(self.store.require_unit(unit_id), request)

    @api("PATCH", "/api/v1/units/<string:unit_id>", roles=("admin",), query={}, body=unit_patch,
         response=UnitView, summary="修改承办单位")
    def update_unit(self, request, unit_id):
        data = dict(request.input)
        expected = data.pop("seq", None)
        return self.unit_view(self.command(request, UNITS, unit_id,
                                           lambda unit: domain.update_unit(unit, data),
                                           expected=expected), request)

    def unit_view(self, doc, request):
        out = strip_internal(doc)
        out["id"] = out.pop("_id")
        out["active"] = bool(out.get("active"))
        p = request.principal
        if not (p.has_any(STAFF) or doc["_id"] in p.ids("unit")):
            out.pop("contacts", None)
        return out

    # --- drafts from citizen requests (liaison) ---------------------------------
    @event_handler("liaison", "request.escalated")
    @idempotent("proposals.on_request_escalated")
    def on_request_escalated(self, event):
        """An unresolved citizen request becomes a draft proposal of the member
        who handled it, with the id the liaison service already links to."""
        p = event["payload"]
        if p.get("to") != "proposal" or self.store.get(p["target_id"]) is not None:
            return
        member = p["member_id"]
        data = {"kind": "member", "type": "interim", "lead_member": member, "cosigners": [],
                "title": p["title"][:50], "category": None, "collective": None,
                "situation": f"由群众诉求 {p['request_id']} 转化（联络站台账），请委员完善后提交。"}
        doc, events = domain.new_proposal(
            data, domain.Actor.of("system:liaison", ["admin"]), proposal_id=p["target_id"],
            org=self.identity.org_code, today=self.today(),
            members=self.lookup_members([member]))
        doc["source"] = {"request_id": p["request_id"], "station_id": p["station_id"]}
        self.insert(None, PROPOSALS, doc, ({}, events), actor="system:liaison", once=True)

    # --- 联动提案 (三级联动) ---------------------------------------------------------
    def linked_events(self, before, after):
        """The domain's linked events of this change, with the names they
        carry looked up here (a county forwards; a city feeds back)."""
        parent = self.identity.uplink
        names = {}
        if domain.forwards(before, after, parent):
            people = domain.proposers(after)
            try:  # names are a courtesy: forwarding works with members down
                names = self.member_names(people) if people else {}
            except Unavailable:
                names = {}
        unit = self.store.unit(after["lead_unit"]) if after.get("source") and \
            after.get("lead_unit") else None
        return domain.linked(before, after, parent_org=parent, names=names,
                             unit_names={unit["_id"]: unit["name"]} if unit else {})

    @linked_handler(linkage.UP, "proposal.referred")
    @idempotent("proposals.on_proposal_forwarded")   # its inbox key and queue since 0.1
    def on_proposal_referred(self, event):
        """A county's proposal beyond its remit: into this platform's review."""
        doc, events = domain.received(event["payload"], origin=event["origin"],
                                      org=self.identity.org_code, today=self.today())
        self.insert(None, PROPOSALS, doc, ({}, events), actor=f"org:{event['origin']}", once=True)

    @linked_handler(linkage.DOWN, "proposal.feedback")
    @idempotent("proposals.on_proposal_feedback")
    def on_proposal_feedback(self, event):
        """The city's progress on a proposal this county forwarded: shown on
        the original (a Conflict retries the delivery)."""
        self.linked_command(event, PROPOSALS, event["payload"]["proposal_id"],
                            lambda p: domain.upstream_change(p, event["payload"], event["seq"]),
                            sent=domain.sent_to)

    @event_handler("provincial", "province.proposal_feedback")
    @idempotent("proposals.on_province_feedback")
    def on_province_feedback(self, event):
        """The provincial committee's progress on a proposal this platform
        forwarded to it: shown on the proposal, like a city's on a county's."""
        p = event["payload"]
        doc = self.store.get(p["proposal_id"])
        if doc is None or (doc.get("forwarded") or {}).get("to") != \
                str(self.identity.parent_org):
            raise Refused("not_sent", f"proposal {p['proposal_id']} was never forwarded to "
                                      "the province; province.proposal_feedback not applied")
        body = {"state": p["state"], "state_label": p["state_label"], "text": p.get("text"),
                "on": p.get("on"), "by": "province"}
        fields, events = domain.upstream_change(doc, body, p["seq"])
        # a county's proposal the city forwarded on: the county is told too
        self.commit(None, PROPOSALS, doc, Decision(fields, events, self.linked_events(
            doc, dict(doc, **fields))), actor="org:province")

    # --- RPC for other services -------------------------------------------------
    @rpc
    def get_proposal(self, proposal_id):
        doc = self.store.get(proposal_id)
        return domain.payload(doc) if doc else None

    @rpc
    @answers_only("provincial")
    def proposal_for_province(self, proposal_id):
        """What the provincial adapter sends of a proposal forwarded to the
        province: its content, proposer and co-signers by name, the path."""
        doc = self.store.get(proposal_id)
        if doc is None:
            return None
        source = doc.get("source") or {}
        people = domain.proposers(doc)
        found = self.lookup_members(people) if people else {}
        lead = found.get(doc.get("lead_member")) or {}
        proposer = {"name": (doc.get("collective") or {}).get("name") or lead.get("name")
                    or source.get("proposer"), "org": source.get("org") or
                    self.identity.org_code, "sector": lead.get("sector"),
                    "party": lead.get("party")}
        sections = (("情况", "situation"), ("分析", "analysis"), ("建议", "suggestions"))
        return {"id": doc["_id"], "title": doc["title"], "category": doc.get("category"),
                "content": "\n".join(f"【{label}】{doc.get(key) or ''}" for label, key in sections),
                "proposer": proposer, "kind": doc["kind"],
                "cosigners": [(found.get(m) or {}).get("name") or m for m in people[1:]]
                or list(source.get("cosigners") or []),
                "path": [source["org"]] if source.get("org") else [],
                "number": doc.get("number"),
                "reason": (doc.get("forwarded") or {}).get("reason"),
                "forwarded_on": (doc.get("forwarded") or {}).get("on")}

    @rpc
    @answers_only("notify")
    def get_unit_contacts(self, unit_id):
        """Contacts for a notification being sent now; never stored by the caller."""
        doc = self.store.unit(unit_id)
        return {"unit_id": unit_id, "name": doc["name"],
                "contacts": doc.get("contacts") or []} if doc else None


def list_row(d, names, units=None):
    """One proposal as a row of the list export; ``units`` maps unit codes to
    names (an office reads 县教育局, not ``jyj``)."""
    units = units or {}

    def unit_name(code):
        return units.get(code, code)
    proposer = (d.get("collective") or {}).get("name") if d["kind"] == "collective" else \
        names.get(d.get("lead_member"), d.get("lead_member"))
    if d["kind"] == "linked":
        source = d.get("source") or {}
        proposer = f"{source.get('proposer') or ''}（{source.get('org')} 转来）"
    values = dict(d, proposer=proposer, type=domain.TYPES.get(d.get("type")),
                  category=domain.CATEGORIES.get(d.get("category")),
                  state=domain.STATE_LABELS.get(d["state"]),
                  lead_unit=unit_name(d.get("lead_unit")) if d.get("lead_unit") else None,
                  co_units="、".join(unit_name(u) for u in d.get("co_units") or []),
                  evaluation=domain.RATINGS.get(d.get("evaluation")),
                  key="是" if d.get("key") else "",
                  on_time={1: "是", 0: "否"}.get(d.get("on_time")),
                  answer_due=(d.get("deadlines") or {}).get("answer"))
    return [values.get(k) for _, k in LIST_COLUMNS]
