"""Liaison entrypoints for consultations (协商议事), mixed into ``LiaisonService``."""
from services.common.http import api
from services.common.outbox import strip_internal

from . import consult
from .consult import CONSULTATIONS
from .requests_api import with_id
from .schemas import CONSULTATION_ACTIONS, ConsultationView, consultation_in


class ConsultationsApi:
    @api("POST", "/api/v1/consultations", query={}, body=consultation_in,
         response=ConsultationView, status=201, summary="新建协商议题")
    def create_consultation(self, request):
        data = request.input
        station = self.store.get("stations", data["station_id"]) if data.get("station_id") \
            else None
        doc, events = consult.new_consultation(
            data, request.principal, consultation_id=self.new_id("CS"),
            org=self.identity.org_code, station=station,
            members_found=self.active_members(data["members"]), today=self.today())
        doc = self.insert(request, CONSULTATIONS, doc, ({}, events))
        return 201, {"Location": f"/api/v1/consultations/{doc['_id']}"}, self.consultation_view(
            doc, request.principal)

    @staticmethod
    def consultation_view(doc, principal):
        return with_id(consult.FLOW.view(strip_internal(doc), principal))

    @api("GET", "/api/v1/consultations",
         query={"state": str, "source": str, "station": str, "year": int}, paged=200,
         response=ConsultationView, summary="协商议事列表")
    def list_consultations(self, request):
        return self.listing(request, CONSULTATIONS,
                            lambda d: self.consultation_view(d, request.principal),
                            renames={"station": "station_id"})

    @api("GET", "/api/v1/consultations/<string:consultation_id>", query={},
         response=ConsultationView, summary="协商议事详情")
    def read_consultation(self, request, consultation_id):
        return self.consultation_view(
            CONSULTATIONS.load(self.db, consultation_id, request.principal), request.principal)

    @api("POST", "/api/v1/consultations/<string:consultation_id>/actions/<string:action>",
         query={}, body=CONSULTATION_ACTIONS, response=ConsultationView, summary="协商议事操作")
    def act_on_consultation(self, request, consultation_id, action):
        data = request.input

        def decide(doc):
            consult.FLOW.check(doc, action, request.principal)
            followup_id = data.pop("followup_id", None) or (
                f"F{len(doc['followups']) + 1}" if action == "add_followup" else None)
            found = self.active_members(data.get("members") or ()) if action == "advance" \
                else {}
            station = self.store.get("stations", doc["station_id"]) \
                if action == "advance" and doc.get("station_id") else None
            return consult.act(doc, action, data, request.principal, today=self.today(),
                               followup_id=followup_id, members_found=found, station=station)
        doc = self.command(request, CONSULTATIONS, consultation_id, decide,
                           expected=data.pop("seq", None))
        return self.consultation_view(doc, request.principal)
