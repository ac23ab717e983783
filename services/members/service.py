"""Members service: the 委员 registry over HTTP (port 8001) and RPC."""
from marshmallow import ValidationError
from nameko.rpc import rpc

from services.common import linkage
from services.common.decisions import Decision
from services.common.http import api, json_body, page, page_params
from services.common.inbox import idempotent
from services.common.linkage import linked_handler
from services.common.messaging import event_handler
from services.common.mongo import Mongo, keep_latest
from services.common.outbox import OutboxRelay
from services.common.problems import Conflict, Forbidden, Invalid, flatten_errors
from services.common import service as platform
from services.common.rpc import answers_only
from services.common.xlsx import XLSX, xlsx_response

from . import domain, entrypoints, imports, roster
from .domain import MEMBERS
from .events import EVENTS  # noqa: F401  the event registry Change.event checks
from .schemas import MemberView, end_in, member_in, member_patch
from .store import FILTERS, INDEXES, RETIRED_INDEXES, MemberStore

READ_ROLES = ("admin", "reviewer")
LINKED_MEMBERS = "linked_members"   # the memberships of the counties below (at a city)


# Mixins are referenced through their module so that `nameko run` finds only
# this class in the module.
class MembersService(entrypoints.MeetingsApi, entrypoints.RecordsApi, platform.PlatformService):
    name = "members"

    db = Mongo(indexes=INDEXES, retired=RETIRED_INDEXES)
    outbox = OutboxRelay("members", "meetings")

    @property
    def store(self):
        return MemberStore(self.db)

    def settings(self):
        conf = self.config.get("MEMBERS") or {}
        return {"codes": {"sectors": conf.get("sectors") or [],
                          "committees": conf.get("committees") or [],
                          "terms": conf.get("terms") or []},
                "person_secret": self.config["PERSON_KEY_SECRET"]}

    def _full_view(self, request, member_id=None):
        p = request.principal
        return p.is_admin or (member_id is not None and member_id in p.ids("member"))

    def _can_read(self, request, member_id=None):
        p = request.principal
        if not (p.has_any(READ_ROLES) or (member_id and member_id in p.ids("member"))):
            raise Forbidden("当前角色无权查看委员信息")

    def checked(self, schema, body):
        """``body`` loaded by ``schema`` and checked against the platform's
        code lists; every invalid field in one 422."""
        try:
            data, errors = schema.load(body), {}
        except ValidationError as exc:
            data = None
            errors = flatten_errors(exc.messages)
            valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        errors = domain.member_errors(errors, data if data is not None else valid,
                                      self.settings()["codes"])
        if errors:
            raise Invalid(errors)
        return data

    # --- HTTP -------------------------------------------------------------
    @api("POST", "/api/v1/members", roles=("admin",), query={}, body=member_in, parse_body=False,
         response=MemberView, status=201, summary="任命委员（换届或增补）")
    def appoint(self, request):
        data = self.checked(member_in, json_body(request))
        settings = self.settings()
        doc, payload = domain.appoint(data, org=str(self.config["ORG_CODE"]),
                                      person_secret=settings["person_secret"])
        if self.store.get(doc["_id"]) is not None:
            raise Invalid({"id_number": ["此人在该届次已有委员记录"]})
        doc = self.insert(request, MEMBERS, doc,
                          domain.appointed(doc, payload, self.identity.uplink))
        return 201, {"Location": f"/api/v1/members/{doc['_id']}"}, domain.view(doc, full=True)

    @api("GET", "/api/v1/members", query={k: str for k in FILTERS}, paged=200,
         response=MemberView, summary="委员名册")
    def list_members(self, request):
        self._can_read(request)
        limit, after = page_params(request)
        unknown = [k for k in request.args if k not in FILTERS + ("limit", "cursor")]
        if unknown:
            raise Invalid({k: ["不支持的查询参数"] for k in unknown})
        docs = self.store.search(request.args, limit, after)
        full = self._full_view(request)
        return page([domain.view(d, full=full) for d in docs], limit)

    @api("GET", "/api/v1/members/<string:member_id>", query={}, response=MemberView,
         summary="委员信息")
    def get_member_http(self, request, member_id):
        self._can_read(request, member_id)
        return domain.view(self.store.require(member_id),
                           full=self._full_view(request, member_id))

    @api("PATCH", "/api/v1/members/<string:member_id>", roles=("admin",), query={},
         body=member_patch, parse_body=False, response=MemberView, summary="修改委员信息")
    def update(self, request, member_id):
        data = self.checked(member_patch, json_body(request))
        expected = data.pop("seq", None)
        doc = self.command(request, MEMBERS, member_id, lambda member: domain.updated(
            member, data, self.identity.uplink), expected=expected)
        return domain.view(doc, full=True)

    @api("POST", "/api/v1/members/<string:member_id>/end", roles=("admin",), query={},
         body=end_in, response=MemberView, summary="撤销、辞去或届满离任")
    def end(self, request, member_id):
        data = request.input
        doc = self.command(request, MEMBERS, member_id, lambda member: domain.ended(
            member, status=data["status"], reason=data["reason"],
            on=data["ended_on"].isoformat(), parent_org=self.identity.uplink),
            expected=data["seq"])
        return domain.view(doc, full=True)

    @api("GET", "/api/v1/persons/<string:person_id>/memberships", roles=READ_ROLES, query={},
         summary="一人在各级政协的委员身份")
    def memberships(self, request, person_id):
        """One person's memberships at every level this platform knows: its
        own committee's, and at a city those its counties have rolled up
        (public fields only). Each names its org, org name and level."""
        full = self._full_view(request)
        me = self.identity
        own = [dict(domain.view(d, full=full), org=me.org_code, org_name=me.org_name,
                    level=me.org_level) for d in self.store.by_person(person_id)]
        below = [dict(domain.linked_view(d), org_name=me.child_names.get(d.get("org"),
                                                                         d.get("org")),
                      level="county")
                 for d in self.db[LINKED_MEMBERS].find({"person_id": person_id}).sort("_id", 1)]
        return {"person_id": person_id, "items": own + below}

    @api("POST", "/api/v1/members/import", roles=("admin",),
         query={"dry_run": str, "filename": str}, upload=True, summary="导入委员名册（CSV/XLSX）")
    def import_roster(self, request):
        dry_run = request.args.get("dry_run", "false").lower() in ("1", "true", "yes")
        upload = request.files.get("file")
        data, filename = (upload.read(), upload.filename or "") if upload else (
            request.get_data(), request.args.get("filename", ""))
        if not data:
            raise Invalid({"file": ["请上传 CSV 或 XLSX 名册文件"]})
        report, creates, updates = imports.plan(
            data, filename, org=str(self.config["ORG_CODE"]), settings=self.settings(),
            lookup=self.store.many)
        report["dry_run"] = dry_run
        if not dry_run:
            parent = self.identity.uplink
            self.insert_many(request, MEMBERS, [(doc, domain.appointed(doc, payload, parent))
                                                for doc, payload in creates])
            for row_number, member, fields, payload in updates:
                decision = Decision(fields, [("member.updated", payload)],
                                    domain.synced(dict(member, **fields), parent))
                try:
                    self.commit(request, MEMBERS, member, decision)
                except Conflict as exc:  # edited meanwhile: report the row, keep going
                    report["updated"] -= 1
                    report["errors"].append({"row": row_number, "field": "_row",
                                             "column": "", "message": exc.detail})
        return report

    @api("GET", "/api/v1/members/export.xlsx", roles=READ_ROLES, query={k: str for k in FILTERS},
         content_type=XLSX, summary="导出委员名册（Excel）")
    def export_roster(self, request):
        filters = {k: v for k, v in request.args.items() if k in FILTERS}
        body = roster.to_xlsx(self.store.all(filters), full=request.principal.is_admin)
        return xlsx_response(body, "members.xlsx")

    # --- roster roll-up (三级联动) ----------------------------------------------
    @linked_handler(linkage.UP, "member.synced")
    @idempotent("members.on_member_synced")
    def on_member_synced(self, event):
        """A county's membership as it is now; an older change never wins."""
        entry = dict(event["payload"], org=event["origin"])
        keep_latest(self.db[LINKED_MEMBERS], entry.pop("member_id"), event["seq"], entry)

    @api("GET", "/api/v1/members/rollup", roles=READ_ROLES, query={},
         summary="本级及各县委员构成汇总")
    def roster_rollup(self, request):
        """This committee and each linked county's: active members by sector,
        party, committee and role, and the people across them counted once."""
        return self.roster_counts()

    @rpc
    @answers_only("provincial")
    def roster_figures(self):
        """The roll-up, for the yearly figures the provincial adapter reports:
        counts only, no person."""
        return self.roster_counts()

    def roster_counts(self):
        own = list(self.store.all({"status": "active"}))
        linked = list(self.db[LINKED_MEMBERS].find({"status": "active"}))
        return domain.rollup(self.identity.org_code, self.identity.org_name, own, linked,
                             self.identity.children)

    # --- RPC for other services (no personal data but contact on demand) ----
    # --- stations (包联) from the liaison service ------------------------------
    @event_handler("liaison", "station.member_assigned")
    @idempotent("members.on_station_assigned")
    def on_station_assigned(self, event):
        self.link_station(event, assigned=True)

    @event_handler("liaison", "station.member_unassigned")
    @idempotent("members.on_station_unassigned")
    def on_station_unassigned(self, event):
        self.link_station(event, assigned=False)

    def link_station(self, event, assigned):
        """Keep ``stations`` of a member; a station's older event never wins."""
        p = event["payload"]
        member = self.store.get(p["member_id"])
        if member is None:
            return
        links = dict(member.get("station_links") or {})
        if links.get(p["station_id"], 0) >= event["seq"]:
            return
        links[p["station_id"]] = event["seq"]
        current = set(member.get("stations") or ())
        current = current | {p["station_id"]} if assigned else current - {p["station_id"]}
        self.store.collection.update_one({"_id": member["_id"]}, {"$set": {
            "stations": sorted(current), "station_links": links}})

    @rpc
    def get_member(self, member_id):
        doc = self.store.get(member_id)
        return domain.public_view(doc) if doc else None

    @rpc
    def get_members(self, member_ids):
        return {k: domain.public_view(v) for k, v in self.store.many(member_ids).items()}

    @rpc
    def find_members(self, station=None, committee=None, sector=None, status="active",
                     limit=1000):
        filters = {"station": station, "committee": committee, "sector": sector,
                   "status": status}
        out = []
        for doc in self.store.all(filters):
            out.append(domain.public_view(doc))
            if len(out) >= limit:
                break
        return out

    @rpc
    @answers_only("notify")
    def get_contact(self, member_id):
        """Addresses for a notification being sent now; never stored by the caller."""
        return self.contacts([member_id]).get(member_id)

    @rpc
    @answers_only("notify")
    def get_contacts(self, member_ids):
        """The same for many members at once (id → addresses)."""
        return self.contacts(member_ids)

    def contacts(self, member_ids):
        return {k: {"member_id": k, "name": d.get("name"), "phone": d.get("phone"),
                    "email": d.get("email"), "wechat_openid": d.get("wechat_openid"),
                    "status": d.get("status")}
                for k, d in self.store.many(member_ids).items()}
