"""Liaison entrypoints for places and stations (mixed into ``LiaisonService``)."""
from services.common.http import api, page, page_params
from services.common.outbox import strip_internal
from services.common.problems import Conflict, Forbidden

from . import stations
from .schemas import (StationView, activity_in, assignment_in, reception_in, station_in,
                      station_patch)
from .stations import STATIONS

STAFF = ("admin", "reviewer")


class StationsApi:
    @api("GET", "/api/v1/places", query={}, summary="本平台的乡镇、村（社区）")
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

    def station_command(self, request, station_id, decide, expected=None, staff_only=False):
        """The command path on a station; ``staff_only``: its own staff or the office."""
        def guarded(doc):
            if staff_only and not stations.is_staff(request.principal, station_id):
                raise Forbidden("只有本站点工作人员或政协办公室可以操作")
            return decide(doc)
        doc = self.command(request, STATIONS, station_id, guarded, expected=expected)
        return self.station_view(doc, request.principal)

    @api("POST", "/api/v1/stations", roles=("admin",), query={}, body=station_in,
         response=StationView, status=201, summary="新建站点")
    def create_station(self, request):
        data = dict(request.input)
        station_id = data.pop("id") or self.new_id("ST")
        if self.store.get("stations", station_id) is not None:
            raise Conflict(f"站点编码 {station_id} 已存在")
        doc, events = stations.new_station(
            data, station_id=station_id, places=self.places, org=self.identity.org_code,
            members_found=self.active_members(data.get("members") or ()),
            room_minimum=self.room_minimum)
        doc = self.insert(request, STATIONS, doc, ({}, events))
        return 201, {"Location": f"/api/v1/stations/{station_id}"}, self.station_view(
            doc, request.principal)

    @api("GET", "/api/v1/stations",
         query={"kind": str, "township": str, "place_code": str, "member": str,
                "below_minimum": int},
         paged=200, response=StationView, summary="站点列表")
    def list_stations(self, request):
        limit, after = page_params(request, default=100)
        args = request.query
        query = {k: args[k] for k in ("kind", "township", "place_code") if k in args}
        if "member" in args:
            query["members"] = args["member"]
        if "below_minimum" in args:   # a deactivated station needs no members
            query.update(meets_minimum=0 if args["below_minimum"] else 1, active=1)
        docs = self.store.page("stations", query, limit, after)
        return page([self.station_view(d, request.principal) for d in docs], limit)

    @api("GET", "/api/v1/stations/<string:station_id>", query={}, response=StationView,
         summary="站点详情")
    def get_station(self, request, station_id):
        return self.station_view(STATIONS.load(self.db, station_id), request.principal)

    @api("PATCH", "/api/v1/stations/<string:station_id>", roles=("admin",), query={},
         body=station_patch, response=StationView, summary="修改站点")
    def update_station(self, request, station_id):
        data = dict(request.input)
        expected = data.pop("seq", None)
        if "active" in data:
            data["active"] = int(data["active"])
        return self.station_command(request, station_id,
                                    lambda doc: stations.update(doc, data), expected)

    @api("POST", "/api/v1/stations/<string:station_id>/members", roles=("admin",), query={},
         body=assignment_in, response=StationView, summary="委员包联站点")
    def assign_member(self, request, station_id):
        member = request.input["member_id"]
        active = member in self.active_members([member])
        return self.station_command(request, station_id, lambda doc: stations.assign(
            doc, member, room_minimum=self.room_minimum, active_member=active))

    @api("DELETE", "/api/v1/stations/<string:station_id>/members/<string:member_id>",
         roles=("admin",), query={}, response=StationView, summary="取消包联")
    def unassign_member(self, request, station_id, member_id):
        return self.station_command(request, station_id, lambda doc: stations.unassign(
            doc, member_id, room_minimum=self.room_minimum))

    @api("POST", "/api/v1/stations/<string:station_id>/reception-days", query={},
         body=reception_in, response=StationView, status=201, summary="安排委员接待日")
    def schedule_reception(self, request, station_id):
        data = request.input
        return 201, {}, self.station_command(
            request, station_id,
            lambda doc: stations.schedule_reception(doc, data, today=self.today()),
            staff_only=True)

    @api("POST", "/api/v1/stations/<string:station_id>/activities", query={}, body=activity_in,
         status=201, summary="登记站点活动（计入履职档案）")
    def hold_activity(self, request, station_id):
        data = request.input
        activity_id = self.new_id("AC")
        self.station_command(request, station_id, lambda doc: stations.hold_activity(
            doc, data, activity_id=activity_id, today=self.today()), staff_only=True)
        return 201, {}, {"activity_id": activity_id, "station_id": station_id,
                         "members": data["members"], "date": data["date"].isoformat()}

    @api("GET", "/api/v1/members/<string:member_id>/stations", query={}, summary="委员包联的站点")
    def member_stations(self, request, member_id):
        p = request.principal
        if not (p.has_any(STAFF) or member_id in p.ids("member")):
            raise Forbidden("当前角色无权查看")
        return {"member_id": member_id,
                "items": [self.station_view(s, request.principal)
                          for s in self.store.stations_of_member(member_id)]}
