"""Liaison service (port 8003): stations, citizen requests, consultations,
社情民意 and tasks between platforms, one nameko service. Each aggregate's
entrypoints are a module of their own (stations_api.py, requests_api.py,
consultations_api.py, opinions_api.py, tasks_api.py) on the kernel's command
path; the rules are in stations.py, citizen.py, consult.py, opinions.py and
tasks.py (pure). Here: what they share, imports of past work, statistics,
members leaving, RPC."""
import uuid

from nameko.rpc import RpcProxy, rpc

from services.common import rollup
from services.common import service as platform
from services.common.rpc import answers_only
from services.common.config import platform_data
from services.common.http import api
from services.common.inbox import idempotent
from services.common.messaging import event_handler
from services.common.mongo import Mongo
from services.common.outbox import OutboxRelay
from services.members.client import MembersLookup

# the entrypoint mixins as modules: `nameko run` takes every class with
# entrypoints in this module's namespace for a service
from . import (citizen, consultations_api, history_import, opinions_api, requests_api, stations,
               stations_api, stats, tasks_api)
from .citizen import REQUESTS
from .consult import CONSULTATIONS
from .opinions import OPINIONS
from .events import EVENTS  # noqa: F401  the event registry Change.event checks
from .stations import STATIONS
from .schemas import liaison_import_in
from .store import INDEXES, LiaisonStore

STAFF = ("admin", "reviewer")


def rollup_figures(db, year):
    """This year's liaison figures (社情民意 included) as the city sees them."""
    store, by_year = LiaisonStore(db), {"year": year}
    return stats.compute(
        year, list(store.all("requests", by_year, {"history": 0, "contact": 0})),
        list(store.all("consultations", by_year)),
        list(store.all("opinions", by_year, {"versions": 0})), store.stations_by_id())


class LiaisonService(stations_api.StationsApi, requests_api.RequestsApi,
                     consultations_api.ConsultationsApi, opinions_api.OpinionsApi,
                     tasks_api.TasksApi,
                     MembersLookup, rollup.Receiver, platform.PlatformService):
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

    @staticmethod
    def new_id(prefix):
        return f"{prefix}{uuid.uuid4().hex[:12]}"

    # --- import of past work -----------------------------------------------------
    @api("POST", "/api/v1/liaison/import", roles=("admin",), query={}, body=liaison_import_in,
         summary="导入历史联络工作记录")
    def import_history(self, request):
        records = request.input["records"]
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
        # replayed facts feed the 履职档案 and the figures; ``imported`` tells
        # notify that nobody is to be told of work finished months ago
        for aggregate in (REQUESTS, CONSULTATIONS, OPINIONS):
            self.insert_many(request, aggregate, [
                (doc, ({}, [(t, dict(body, imported=True)) for t, body in events]))
                for kind, doc, events in docs if kind == aggregate.collection])
        return report

    # --- statistics -------------------------------------------------------------------
    @api("GET", "/api/v1/liaison/statistics", roles=STAFF, query={"year": int},
         summary="联络工作统计")
    def statistics(self, request):
        args = request.query
        return rollup_figures(self.db, args.get("year") or self.today().year)

    @api("GET", "/api/v1/liaison/statistics/counties", roles=STAFF, query={"year": int},
         summary="各县联络工作统计（联动汇总）")
    def county_statistics(self, request):
        """Each linked county's liaison and 社情民意 figures, kept current by
        its roll-up."""
        year = request.query.get("year") or self.today().year
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
            self.commit(None, STATIONS, s, stations.unassign(
                s, member_id, room_minimum=self.room_minimum, reason=reason), actor=actor)
        rules, now = self.request_rules(), self.now()
        for r in list(self.store.all("requests", {"member_id": member_id})):
            decision = citizen.return_to_dispatch(
                r, now=now, rules=rules, reason=f"委员{event['payload'].get('reason') or '离任'}")
            if decision[1]:
                self.commit(None, REQUESTS, r, decision, actor=actor)

    # --- RPC ---------------------------------------------------------------------
    @rpc
    @answers_only("notify")
    def get_station_contacts(self, station_id):
        """Contacts for a notification being sent now; never stored by the caller."""
        doc = self.store.get("stations", station_id)
        return {"station_id": station_id, "name": doc["name"],
                "contacts": doc.get("contacts") or []} if doc else None

    @rpc
    @answers_only("notify")
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

