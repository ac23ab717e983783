"""Members service entrypoints for meetings and the 履职档案 (mixed into
``MembersService``): thin, the rules are in meetings.py and record.py."""
import hashlib
import json
import uuid

import pymongo
from nameko.timer import timer

from services.common.lease import duty
from services.common.http import api, moment_param, page, page_params, small_int
from services.common.inbox import Inbox, lease_seconds
from services.common.messaging import event_handler
from services.common.mongo import find_page
from services.common.outbox import strip_internal
from services.common.problems import Conflict, Forbidden, Invalid
from services.common.xlsx import XLSX, workbook, xlsx_response

from . import meetings, record
from .meetings import MEETINGS
from .schemas import (MeetingView, checkin_in, code_in, leave_decision, leave_in, meeting_in,
                      reopen_in)

STAFF = ("admin", "reviewer")
RECORD_CONSUMER = "members.record"


def _year_param(request, today):
    raw = request.args.get("year")
    if raw is None:
        return today.year
    if not (small_int(raw) and 2000 <= int(raw) <= 2100):
        raise Invalid({"year": ["年度应为四位数字"]})
    return int(raw)


class MeetingsApi:
    """Meetings and activities: notice, sign-up, leave, check-in, attendance."""

    def meeting_rules(self):
        return meetings.MeetingRules.from_config(
            (self.config.get("MEMBERS") or {}).get("meetings"))

    def meeting(self, meeting_id):
        return MEETINGS.load(self.db, meeting_id)

    def meeting_view(self, doc, request):
        out = strip_internal(doc)
        out["id"] = out.pop("_id")
        out["kind_label"] = meetings.KINDS[doc["kind"]]
        p = request.principal
        if not p.has_any(STAFF):
            mine = p.ids("member") & set(doc["attendees"])
            out["attendees"] = {m: doc["attendees"][m] for m in mine}
            out.pop("codes", None)
        return out

    def apply_meeting(self, request, doc, fields, events, actor=None):
        return self.commit(request, MEETINGS, doc, meetings.decided(doc, fields, events),
                           actor=actor)

    def acting_member(self, request, body_member=None):
        p = request.principal
        if p.is_admin and body_member:
            return body_member
        own = sorted(p.ids("member"))
        if len(own) != 1:
            raise Forbidden("须以委员本人身份操作")
        return own[0]

    @api("POST", "/api/v1/meetings", roles=("admin",), query={}, body=meeting_in,
         response=MeetingView, status=201, summary="安排会议活动")
    def create_meeting(self, request):
        data = request.input
        conf = self.config.get("MEMBERS") or {}
        terms = conf.get("terms") or []
        if data.get("term") and terms and data["term"] not in terms:
            raise Invalid({"term": ["取值应为：" + "、".join(terms)]})
        doc, events = meetings.new_meeting(
            data, meeting_id=f"mt-{uuid.uuid4().hex[:12]}",
            members=list(self.store.all({"status": "active"})), rules=self.meeting_rules(),
            term=terms[-1] if terms else None)
        doc = self.insert(request, MEETINGS, doc, ({}, events))
        self.notify_due(doc, self.now().date())
        return 201, {"Location": f"/api/v1/meetings/{doc['_id']}"}, self.meeting_view(
            self.meeting(doc["_id"]), request)

    @api("GET", "/api/v1/meetings", query={"year": str, "kind": str}, paged=200,
         response=MeetingView, summary="会议活动列表")
    def list_meetings(self, request):
        limit, after = page_params(request)
        p = request.principal
        query = {}
        if request.args.get("year"):
            query["year"] = _year_param(request, self.now())
        if request.args.get("kind"):
            query["kind"] = request.args["kind"]
        query = MEETINGS.visibility.narrow(query, p)
        docs = find_page(self.db["meetings"], query, limit, after)
        return page([self.meeting_view(d, request) for d in docs], limit)

    @api("GET", "/api/v1/meetings/<string:meeting_id>", query={}, response=MeetingView,
         summary="会议活动详情")
    def get_meeting(self, request, meeting_id):
        return self.meeting_view(MEETINGS.load(self.db, meeting_id, request.principal),
                                 request)

    @api("POST", "/api/v1/meetings/<string:meeting_id>/signup", query={}, response=MeetingView,
         summary="委员报名")
    def sign_up(self, request, meeting_id):
        member = self.acting_member(request)
        doc = self.meeting(meeting_id)
        fields, events = meetings.sign_up(doc, member, self.now())
        return self.meeting_view(self.apply_meeting(request, doc, fields, events), request)

    @api("POST", "/api/v1/meetings/<string:meeting_id>/leave", query={}, body=leave_in,
         response=MeetingView, summary="委员请假")
    def request_leave(self, request, meeting_id):
        data = request.input
        member = self.acting_member(request)
        doc = self.meeting(meeting_id)
        fields, events = meetings.request_leave(doc, member, data["reason"], self.now())
        return self.meeting_view(self.apply_meeting(request, doc, fields, events), request)

    @api("POST", "/api/v1/meetings/<string:meeting_id>/leave/<string:member_id>",
         roles=("admin",), query={}, body=leave_decision, response=MeetingView,
         summary="审批请假")
    def decide_leave(self, request, meeting_id, member_id):
        data = request.input
        doc = self.meeting(meeting_id)
        fields, events = meetings.decide_leave(doc, member_id, data["approve"], data["note"],
                                               self.now())
        return self.meeting_view(self.apply_meeting(request, doc, fields, events), request)

    @api("POST", "/api/v1/meetings/<string:meeting_id>/codes", roles=("admin",), query={},
         body=code_in, status=201, summary="生成当日签到码")
    def issue_code(self, request, meeting_id):
        data = request.input
        doc = self.meeting(meeting_id)
        now = self.now()
        day = (data["day"] or now.date()).isoformat()
        minutes = data["valid_minutes"] or self.meeting_rules().code_minutes
        code, fields = meetings.issue_code(doc, day, now, minutes)
        self.apply_meeting(request, doc, fields, [])
        return 201, {"code": code, "day": day,
                     "expires_at": fields["codes"][code]["expires_at"]}

    @api("POST", "/api/v1/meetings/<string:meeting_id>/checkin", query={}, body=checkin_in,
         response=MeetingView, summary="签到（委员凭签到码，会务人员代签）")
    def check_in(self, request, meeting_id):
        data = request.input
        doc = self.meeting(meeting_id)
        p = request.principal
        now = self.now()
        if p.is_admin:
            if not data["member_id"]:
                raise Invalid({"member_id": ["会务人员签到须指明委员"]})
            fields, events = meetings.check_in(
                doc, data["member_id"], (data["day"] or now.date()).isoformat(), now,
                by_staff=True)
        else:
            member = self.acting_member(request)   # who may check in comes before what
            if not data["code"]:
                raise Invalid({"code": ["请输入会场公布的签到码"]})
            fields, events = meetings.check_in(doc, member, None, now, code=data["code"])
        return self.meeting_view(self.apply_meeting(request, doc, fields, events), request)

    @api("POST", "/api/v1/meetings/<string:meeting_id>/close", roles=("admin",), query={},
         response=MeetingView, summary="结束会议并记录出勤")
    def close_meeting(self, request, meeting_id):
        doc = self.close(self.meeting(meeting_id), request)
        return self.meeting_view(doc, request)

    def close(self, doc, request=None):
        rules = self.meeting_rules()
        fields, events = meetings.close(doc, rules, self.now())
        closed = dict(doc, **fields)
        others = list(self.db["meetings"].find(
            {"term": doc["term"], "state": "closed", "_id": {"$ne": doc["_id"]}},
            {"kind": 1, "state": 1, "attendance": 1, "term": 1}))
        for flag in meetings.absences(others + [closed], rules):
            if flag["member_id"] in fields["attendance"]["absent"] and \
                    doc["kind"] in rules.absence_flag["kinds"]:
                events.append(("member.absence_flagged", flag))
        return self.apply_meeting(request, doc, fields, events,
                                  actor=None if request else "system:scan")

    @api("POST", "/api/v1/meetings/<string:meeting_id>/reopen", roles=("admin",), query={},
         body=reopen_in, response=MeetingView, summary="重新开启以更正出勤")
    def reopen_meeting(self, request, meeting_id):
        """Open a closed meeting again to correct its attendance (with a
        ``reason``); close it again to record the corrected attendance."""
        doc = self.meeting(meeting_id)
        fields, events = meetings.reopen(doc, request.input["reason"],
                                         request.principal.sub, self.now())
        return self.meeting_view(self.apply_meeting(request, doc, fields, events), request)

    @api("GET", "/api/v1/meetings/absences", roles=STAFF, query={"term": str},
         summary="缺席通报名单")
    def absences(self, request):
        query = {"state": "closed"}
        if request.args.get("term"):
            query["term"] = request.args["term"]
        docs = list(self.db["meetings"].find(query, {"kind": 1, "state": 1, "attendance": 1,
                                                     "term": 1}))
        return {"items": meetings.absences(docs, self.meeting_rules())}

    def notify_due(self, doc, today):
        fields, events = meetings.notice(doc, today)
        if fields:
            try:
                self.apply_meeting(None, doc, fields, events, actor="system:scan")
            except Conflict:
                pass  # changed meanwhile: the next scan sends it

    @timer(interval=3600)
    @duty("meeting_scan")
    def scheduled_meeting_scan(self):
        self.meeting_scan(self.now())

    @api("POST", "/api/v1/meetings/scan", roles=("admin",), query={"today": str},
         summary="立即执行会议通知与结束扫描")
    def meeting_scan_http(self, request):
        """Sends due notices and closes finished meetings; ``?today=`` for drills."""
        return self.meeting_scan(moment_param(request, "today", self.now()))

    def meeting_scan(self, now):
        report = {"notices": 0, "closed": 0}
        for doc in self.db["meetings"].find({"state": "scheduled"}):
            if not doc.get("notice_sent") and now.date().isoformat() >= doc["notice_on"]:
                self.notify_due(doc, now.date())
                report["notices"] += 1
                doc = self.meeting(doc["_id"])
            if now.date().isoformat() > doc["ends_on"]:
                try:
                    self.close(doc)
                    report["closed"] += 1
                except Conflict:
                    pass
        return report


class RecordsApi:
    """履职档案: facts from events, records from facts, the yearly report."""

    def record_rules(self):
        conf = (self.config.get("MEMBERS") or {}).get("record") or {}
        return conf.get("points") or {}, conf.get("minimums") or {}

    # --- consuming events ---------------------------------------------------
    @event_handler("proposals", "proposal.*")
    def on_proposal_event(self, event):
        self.take_facts(event)

    @event_handler("liaison", "opinion.*")
    def on_opinion_event(self, event):
        self.take_facts(event)

    @event_handler("liaison", "request.closed")
    def on_request_closed(self, event):
        self.take_facts(event)

    @event_handler("liaison", "station.activity_held")
    def on_station_activity(self, event):
        self.take_facts(event)

    @event_handler("members", "meeting.attendance_recorded")
    def on_attendance(self, event):
        self.take_facts(event)

    def take_facts(self, event):
        if event.get("type") not in record.RECORD_EVENT_TYPES:
            return
        facts = record.facts_from_event(event)
        if facts:
            Inbox(self.db, lease_seconds=lease_seconds(self.config)).run(
                RECORD_CONSUMER, event["event_id"], lambda: self.store_facts(facts),
                event["type"])

    def store_facts(self, facts):
        """Store an event's facts (the newer of two under one key wins) and
        recompute the records they touch: one read and one bulk write for
        the facts, whatever their number (a proposal's every proposer)."""
        collection = self.db["facts"]
        keys = [f["_id"] for f in facts]
        current = {f["_id"]: f for f in collection.find({"_id": {"$in": keys}})}
        touched, writes = set(), []
        for fact in facts:
            before = current.get(fact["_id"])
            if record.keep(before, fact) is before:
                continue
            body = {k: v for k, v in fact.items() if k != "_id"}
            writes.append(pymongo.UpdateOne({"_id": fact["_id"]}, {"$set": body}, upsert=True))
            current[fact["_id"]] = fact
            touched.add((fact["member_id"], fact["year"]))
            if before:
                touched.add((before["member_id"], before["year"]))
        if writes:
            collection.bulk_write(writes, ordered=True)
        points, _ = self.record_rules()
        self.recompute_many(touched, points)

    def recompute_many(self, pairs, points, rounds=20):
        """Score the facts of each ``(member, year)`` and store the records.
        Two events for one member can be recomputed at once (in two
        replicas); whoever writes reads the facts again afterwards and scores
        again those that changed meanwhile, so the last record written always
        reflects every fact. One read of the facts, one bulk write of the
        records and one read to check, for all the pairs together."""
        pending = set(pairs)
        facts = self._facts_of(pending)
        for _ in range(rounds):
            if not pending:
                break
            writes = []
            for member_id, year in sorted(pending):
                rec = record.score(member_id, year, facts[(member_id, year)], points)
                writes.append(pymongo.UpdateOne(
                    {"_id": rec["_id"]}, {"$set": {k: v for k, v in rec.items() if k != "_id"}},
                    upsert=True))
            self.db["records"].bulk_write(writes, ordered=False)
            now = self._facts_of(pending)
            pending = {pair for pair in pending if now[pair] != facts[pair]}
            facts.update(now)

    def _facts_of(self, pairs):
        """``(member, year)`` → that member's facts of that year, by key."""
        members = sorted({m for m, _ in pairs})
        years = {y for _, y in pairs}
        query = {"member_id": members[0] if len(members) == 1 else {"$in": members}}
        if len(years) == 1:
            query["year"] = next(iter(years))
        out = {pair: [] for pair in pairs}
        for f in self.db["facts"].find(query):
            if (f["member_id"], f["year"]) in out:
                out[(f["member_id"], f["year"])].append(f)
        return {pair: sorted(found, key=lambda f: f["_id"]) for pair, found in out.items()}

    # --- HTTP -----------------------------------------------------------------
    @api("GET", "/api/v1/records/<string:member_id>", query={"year": str}, summary="委员履职档案")
    def get_record(self, request, member_id):
        p = request.principal
        if not (p.has_any(STAFF) or member_id in p.ids("member")):
            raise Forbidden("只能查看本人的履职档案")
        year = _year_param(request, self.now())
        rec = self.db["records"].find_one({"_id": f"{member_id}:{year}"}) or \
            record.empty_record(member_id, year)
        _, minimums = self.record_rules()
        out = dict(rec)
        out.pop("_id", None)
        out["shortfalls"] = record.shortfalls(rec, minimums)
        out["facts"] = [{k: f[k] for k in ("kind", "ref", "source")} for f in
                        self.db["facts"].find({"member_id": member_id, "year": year})
                        .sort("_id", 1)]
        return out

    @api("POST", "/api/v1/records/rebuild", roles=("admin",), query={"year": str},
         summary="按已记录的事实重算履职档案")
    def rebuild(self, request):
        """Recomputes every record (of ``?year=`` or all years) from the stored
        facts with the current point table; returns a digest of the result."""
        year = _year_param(request, self.now()) if request.args.get("year") else None
        points, _ = self.record_rules()
        query = {"year": year} if year else {}
        pairs = {(f["member_id"], f["year"]) for f in
                 self.db["facts"].find(query, {"member_id": 1, "year": 1})}
        self.db["records"].delete_many(query)
        pairs = sorted(pairs)
        for start in range(0, len(pairs), 100):
            self.recompute_many(pairs[start:start + 100], points)
        return {"year": year, "records": len(pairs), "digest": self.records_digest(year)}

    def records_digest(self, year=None):
        query = {"year": year} if year else {}
        docs = sorted(self.db["records"].find(query), key=lambda d: d["_id"])
        raw = json.dumps(docs, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()

    def yearly_report(self, request):
        year = _year_param(request, self.now())
        records = list(self.db["records"].find({"year": year}))
        members = {m["_id"]: m for m in self.store.all({"status": "active"})}
        _, minimums = self.record_rules()
        return record.report(records, members, year, minimums)

    @api("GET", "/api/v1/records/report", roles=STAFF, query={"year": str},
         summary="年度履职通报")
    def report(self, request):
        return self.yearly_report(request)

    @api("GET", "/api/v1/records/report.xlsx", roles=STAFF, query={"year": str},
         content_type=XLSX, summary="年度履职通报（Excel）")
    def report_xlsx(self, request):
        rep = self.yearly_report(request)
        rank = [[r["rank"], r["member_id"], r["name"], r["sector"], "、".join(r["committees"]),
                 r["points"], r["totals"]["proposals"], r["totals"]["opinions"],
                 r["totals"]["activities"], r["totals"]["meetings_attended"],
                 r["totals"]["meetings_absent"]]
                for r in rep["ranking"]]
        below = [[r["member_id"], r["name"], r["sector"], record.shortfall_text(r["shortfalls"])]
                 for r in rep["below_minimums"]]
        att = [["专委会", k, v["invited"], v["attended"], v["rate"]]
               for k, v in rep["attendance"]["by_committee"].items()] + \
              [["界别", k, v["invited"], v["attended"], v["rate"]]
               for k, v in rep["attendance"]["by_sector"].items()]
        body = workbook([
            ("履职积分排名", ["名次", "委员编号", "姓名", "界别", "专委会", "积分", "提案",
                        "社情民意", "活动", "出席会议", "缺席会议"], rank),
            ("未达履职要求", ["委员编号", "姓名", "界别", "未达项目（实际/要求）"], below),
            ("出勤率", ["分组", "名称", "应出席", "实出席", "出勤率"], att)])
        return xlsx_response(body, f"{rep['year']}年度履职通报.xlsx")

