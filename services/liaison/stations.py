"""Stations (委员工作站 / 委员联络站 / 委员之家 / 协商议事室): places, assigned
members, the "1+2+N" rule, reception days and activities. Pure."""
from dataclasses import dataclass, field

from services.common.decisions import Aggregate
from services.common.problems import Conflict, Invalid

KINDS = {"studio": "委员工作站", "liaison": "委员联络站", "home": "委员之家",
         "room": "协商议事室"}
LEVELS = {"township": "乡镇（街道）", "village": "村（社区）"}


@dataclass
class Places:
    """The townships and villages of this platform, as configured data."""
    by_code: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, conf):
        by_code = {}
        for t in (conf or ()):
            code = str(t["code"])
            by_code[code] = {"code": code, "name": t["name"], "level": "township",
                             "township": code, "township_name": t["name"]}
            for v in t.get("villages") or ():
                vcode = str(v["code"])
                by_code[vcode] = {"code": vcode, "name": v["name"], "level": "village",
                                  "township": code, "township_name": t["name"]}
        return cls(by_code)

    def get(self, code):
        return self.by_code.get(str(code))

    def townships(self):
        return [p for p in self.by_code.values() if p["level"] == "township"]


def is_staff(actor, station_id):
    return actor.is_admin or station_id in actor.ids("station")


def minimum_for(doc, room_minimum):
    """Members a station must have: 议事室 need ``room_minimum`` (the "2" of 1+2+N)."""
    return room_minimum if doc["kind"] == "room" else 1


def meets_minimum(doc, room_minimum):
    return len(doc["members"]) >= minimum_for(doc, room_minimum)


def new_station(data, *, station_id, places, org, members_found, room_minimum):
    place = places.get(data["place_code"])
    errors = {}
    if place is None:
        errors["place_code"] = ["不是本平台的乡镇或村（社区）编码"]
    members = list(dict.fromkeys(data.get("members") or ()))
    unknown = [m for m in members if m not in members_found]
    if unknown:
        errors["members"] = [f"不是在任委员：{'、'.join(unknown)}"]
    if errors:
        raise Invalid(errors)
    doc = {"_id": station_id, "org": org, "name": data["name"], "kind": data["kind"],
           "place_code": place["code"], "place_name": place["name"], "level": place["level"],
           "township": place["township"], "township_name": place["township_name"],
           "address": data.get("address"), "contacts": list(data.get("contacts") or ()),
           "members": members, "active": 1,
           "reception_days": [], "activities": 0}
    doc["meets_minimum"] = int(meets_minimum(doc, room_minimum))
    events = [("station.created", payload(doc))]
    events += [("station.member_assigned", payload(doc, member_id=m)) for m in members]
    if not doc["meets_minimum"]:
        events.append(("station.below_minimum", payload(
            doc, required=minimum_for(doc, room_minimum))))
    return doc, events


def assign(doc, member_id, *, room_minimum, active_member):
    if member_id in doc["members"]:
        raise Conflict(f"委员 {member_id} 已在该站点", current_state="assigned")
    if not active_member:
        raise Invalid({"member_id": ["不是在任委员"]})
    members = doc["members"] + [member_id]
    return _membership(doc, members, "station.member_assigned", member_id, room_minimum)


def unassign(doc, member_id, *, room_minimum, reason="office"):
    if member_id not in doc["members"]:
        raise Conflict(f"委员 {member_id} 不在该站点", current_state="unassigned")
    members = [m for m in doc["members"] if m != member_id]
    return _membership(doc, members, "station.member_unassigned", member_id, room_minimum,
                       reason=reason)


def _membership(doc, members, event_type, member_id, room_minimum, **extra):
    new = dict(doc, members=members)
    now_ok = meets_minimum(new, room_minimum)
    fields = {"members": members, "meets_minimum": int(now_ok)}
    events = [(event_type, payload(new, member_id=member_id, **extra))]
    if doc.get("meets_minimum") and not now_ok:
        events.append(("station.below_minimum", payload(
            new, required=minimum_for(new, room_minimum))))
    elif not doc.get("meets_minimum") and now_ok:
        events.append(("station.minimum_restored", payload(new)))
    return fields, events


def schedule_reception(doc, data, *, today):
    day = data["date"]
    if day < today:
        raise Invalid({"date": ["接待日不能早于今天"]})
    members = list(dict.fromkeys(data.get("members") or doc["members"]))
    strangers = [m for m in members if m not in doc["members"]]
    if strangers:
        raise Invalid({"members": [f"不是本站点的委员：{'、'.join(strangers)}"]})
    if not members:
        raise Invalid({"members": ["接待日至少安排一名委员"]})
    if any(r["date"] == day.isoformat() for r in doc["reception_days"]):
        raise Conflict(f"{day.isoformat()} 已安排接待日", current_state="scheduled")
    entry = {"date": day.isoformat(), "members": members, "topic": data.get("topic")}
    days = sorted(doc["reception_days"] + [entry], key=lambda r: r["date"])
    return {"reception_days": days}, [("station.reception_scheduled",
                                       payload(doc, date=entry["date"], members=members))]


def update(doc, data):
    """A station's own fields changed by the office: (fields, events)."""
    fields = {k: v for k, v in data.items() if doc.get(k) != v}
    return fields, [("station.updated", payload(dict(doc, **fields), changed=sorted(fields)))] \
        if fields else []


def hold_activity(doc, data, *, activity_id, today):
    """An activity held at an active station, on a day that has come (this
    year or last), by the station's own members: it credits their 履职档案."""
    if not doc.get("active"):
        raise Conflict("站点已停用，不能登记活动", current_state="inactive")
    day = data["date"]
    if day > today:
        raise Invalid({"date": ["活动日期不能晚于今天"]})
    if day.year < today.year - 1:
        raise Invalid({"date": [f"只能登记 {today.year - 1} 年以来的活动"]})
    members = list(dict.fromkeys(data["members"]))
    strangers = [m for m in members if m not in doc["members"]]
    if strangers:
        raise Invalid({"members": [f"不是本站点的委员：{'、'.join(strangers)}"]})
    return {"activities": doc.get("activities", 0) + 1}, [("station.activity_held", {
        "activity_id": activity_id, "source": "station", "station_id": doc["_id"],
        "title": data["title"], "members": members, "date": data["date"].isoformat(),
        "year": data["date"].year})]


STATIONS = Aggregate("stations", "站点")   # every token of the platform sees stations


def payload(doc, **extra):
    """A station in events: no addresses of people, no contacts."""
    body = {"station_id": doc["_id"], "name": doc["name"], "kind": doc["kind"],
            "place_code": doc["place_code"], "township": doc["township"],
            "member_count": len(doc["members"])}
    body.update(extra)
    return body
