"""Liaison entrypoints for 社情民意 (public-opinion reports), mixed into
``LiaisonService``: the office's steps, and items crossing the link."""
from services.common.auth import Principal
from services.common.decisions import Decision
from services.common.http import api
from services.common.inbox import idempotent
from nameko.rpc import rpc

from services.common.linkage import DOWN, UP, linked_handler
from services.common.messaging import event_handler
from services.common.outbox import strip_internal
from services.common.problems import Unavailable
from services.common.rpc import answers_only
from services.common.signing import Refused

from . import opinions
from .opinions import OPINIONS
from .requests_api import with_id
from .schemas import OPINION_ACTIONS, OpinionView, opinion_in


class OpinionsApi:
    @staticmethod
    def opinion_view(doc, principal):
        return with_id(opinions.FLOW.view(strip_internal(doc), principal))

    @api("POST", "/api/v1/opinions", query={}, body=opinion_in, response=OpinionView,
         status=201, summary="提交社情民意")
    def submit_opinion(self, request):
        data = request.input
        station = self.store.get("stations", data["station_id"]) if data.get("station_id") \
            else None
        own = sorted(request.principal.ids("member"))
        author = data.get("author_member") or (own[0] if own else None)
        doc, events = opinions.new_opinion(
            data, request.principal, opinion_id=self.new_id("OP"), org=self.identity.org_code,
            today=self.today(), members_found=self.active_members([author]), station=station)
        doc = self.insert(request, OPINIONS, doc, ({}, events))
        return 201, {"Location": f"/api/v1/opinions/{doc['_id']}"}, self.opinion_view(
            doc, request.principal)

    @api("GET", "/api/v1/opinions",
         query={"state": str, "year": int, "author": str, "station": str}, paged=200,
         response=OpinionView, summary="社情民意列表（按角色可见）")
    def list_opinions(self, request):
        return self.listing(request, OPINIONS, lambda d: self.opinion_view(d, request.principal),
                            renames={"author": "author_member", "station": "station_id"})

    @api("GET", "/api/v1/opinions/<string:opinion_id>", query={}, response=OpinionView,
         summary="社情民意详情")
    def read_opinion(self, request, opinion_id):
        return self.opinion_view(OPINIONS.load(self.db, opinion_id, request.principal),
                                 request.principal)

    def opinion_decision(self, doc, action, data, actor, **ids):
        """``opinions.act`` with this platform's levels, and its linked events."""
        fields, events = opinions.act(
            doc, action, data, actor, today=self.today(), own_level=self.identity.org_level,
            parent_org=self.identity.parent_org, orgs=self.settings.get("upper_orgs") or {},
            **ids)
        # counties reach their city over the link; a city reaches the province
        # through the provincial adapter, not federation
        linked = opinions.linked(doc, fields, action, data, parent_org=self.identity.uplink)
        author = doc.get("author_member")
        if author and any(t == "opinion.forwarded" for t, _, _ in linked):
            try:  # the name is a courtesy: reporting works with the broker down
                name = self.member_names([author]).get(author)
            except Unavailable:
                name = None
            linked = opinions.linked(doc, fields, action, data,
                                     parent_org=self.identity.uplink, author_name=name)
        return Decision(fields, events, linked)

    @api("POST", "/api/v1/opinions/<string:opinion_id>/actions/<string:action>", query={},
         body=OPINION_ACTIONS, response=OpinionView, summary="社情民意办理操作")
    def act_on_opinion(self, request, opinion_id, action):
        data = request.input
        today = self.today()

        def decide(doc):
            opinions.FLOW.check(doc, action, request.principal)
            issue_no = data.pop("issue_no", None)
            if action == "issue" and issue_no is None:
                issue_no = self.store.next_number(f"opinion-issue-{today.year}")
            return self.opinion_decision(
                doc, action, data, request.principal, issue_no=issue_no,
                instruction_id=self.new_id("IN") if action == "instruct" else None)
        doc = self.command(request, OPINIONS, opinion_id, decide, expected=data.pop("seq", None))
        return self.opinion_view(doc, request.principal)

    @linked_handler(UP, "opinion.forwarded")
    @idempotent("liaison.on_opinion_forwarded")
    def on_opinion_forwarded(self, event):
        """社情民意 a county reported up: into this platform's intake."""
        p = event["payload"]
        doc, events = opinions.received(p, origin=event["origin"],
                                        opinion_id=f"{event['origin']}-{p['opinion_id']}",
                                        org=self.identity.org_code, today=self.today())
        self.insert(None, OPINIONS, doc, ({}, events), actor=f"org:{event['origin']}", once=True)

    @linked_handler(DOWN, "opinion.feedback")
    @idempotent("liaison.on_opinion_feedback")
    def on_opinion_feedback(self, event):
        """The parent platform reported further, adopted or instructed an item
        of ours: the same step on the original, which credits its author."""
        p = event["payload"]
        data = {k: p[k] for k in ("level", "leader", "text", "note") if p.get(k)}
        actor = Principal(sub=f"org:{event['origin']}", org=self.identity.org_code,
                          roles=("admin",))

        def decide(doc):
            if p["action"] == "report" and p["level"] in doc["reported"] or \
                    p["action"] == "adopt" and p["level"] in doc["adopted"]:
                return Decision()   # already recorded
            return self.opinion_decision(doc, p["action"], data, actor,
                                         instruction_id=f"IN-{event['event_id'][:12]}")
        self.linked_command(event, OPINIONS, p["opinion_id"], decide, sent=opinions.sent_to)

    @rpc
    @answers_only("provincial")
    def opinion_for_province(self, opinion_id):
        """What the provincial adapter sends of an item reported to the
        province: its text and author (with sector, party and committees
        when the author is a member here), the path it came up, its issue."""
        doc = self.store.get("opinions", opinion_id)
        if doc is None:
            return None
        source = doc.get("source") or {}
        author = {"name": source.get("author_name"), "org": source.get("org")}
        if doc.get("author_member"):
            member = self.lookup_members([doc["author_member"]]).get(doc["author_member"]) or {}
            author = {"name": member.get("name"), "org": self.identity.org_code,
                      "sector": member.get("sector"), "party": member.get("party"),
                      "committees": member.get("committees") or []}
        return {"id": doc["_id"], "title": doc["title"], "content": doc["content"],
                "category": doc.get("category"), "author": author,
                "path": [source["org"]] if source.get("org") else [],
                "issue": (doc.get("issue") or {}).get("label"),
                "reported_on": ((doc.get("reported") or {}).get("province") or {}).get("on")}

    @event_handler("provincial", "province.opinion_feedback")
    @idempotent("liaison.on_province_feedback")
    def on_province_feedback(self, event):
        """The province adopted, instructed or reported on to the national
        committee an item this platform reported to it: the same step here,
        which credits the author and, for a county's item, goes on down."""
        p = event["payload"]
        data = {k: p[k] for k in ("level", "leader", "text", "note") if p.get(k)}
        if p["action"] == "instruct":
            data.setdefault("leader", "省级领导")
        actor = Principal(sub="org:province", org=self.identity.org_code, roles=("admin",))
        doc = self.store.get("opinions", p["opinion_id"])
        if doc is None or "province" not in (doc.get("reported") or {}):
            raise Refused("not_sent", f"opinion {p['opinion_id']} was never reported to the "
                                      "province; province.opinion_feedback not applied")
        if p["action"] == "report" and p["level"] in doc["reported"] or \
                p["action"] == "adopt" and p["level"] in doc["adopted"]:
            return   # already recorded
        self.commit(None, OPINIONS, doc, self.opinion_decision(
            doc, p["action"], data, actor, instruction_id=f"IN-{event['event_id'][:12]}"),
            actor="org:province")
