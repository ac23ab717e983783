"""Liaison statistics for a year, as the work reports quote them. Pure."""
from collections import Counter, defaultdict

from . import citizen, consult, opinions


def _rate(part, whole):
    return round(part / whole, 4) if whole else None


def requests_figures(requests, stations):
    by_state = Counter(r["state"] for r in requests)
    per_station = defaultdict(list)
    for r in requests:
        per_station[r["station_id"]].append(r)
    rows = []
    for sid in sorted(per_station):
        rs = per_station[sid]
        closed = [r for r in rs if r.get("closed_at")]
        ratings = [r["rating"]["score"] for r in rs if r.get("rating")]
        rows.append({"station_id": sid, "name": (stations.get(sid) or {}).get("name"),
                     "requests": len(rs), "closed": len(closed),
                     "on_time": sum(1 for r in closed if r.get("on_time")),
                     "on_time_rate": _rate(sum(1 for r in closed if r.get("on_time")),
                                           len(closed)),
                     "rated": len(ratings),
                     "average_rating": round(sum(ratings) / len(ratings), 2) if ratings
                     else None})
    closed = [r for r in requests if r.get("closed_at")]
    ratings = [r["rating"]["score"] for r in requests if r.get("rating")]
    return {"total": len(requests),
            "by_state": {s: by_state.get(s, 0) for s in citizen.STATE_LABELS},
            "closed": len(closed),
            "on_time_rate": _rate(sum(1 for r in closed if r.get("on_time")), len(closed)),
            "average_rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
            "escalated": by_state.get("escalated", 0) + sum(
                1 for r in requests if r.get("escalation") and r["state"] != "escalated"),
            "by_station": rows}


def consultation_figures(items):
    followups = [f for c in items for f in c["followups"].values()]
    return {"total": len(items),
            "by_source": dict(Counter(c["source"] for c in items)),
            "by_state": {s: sum(1 for c in items if c["state"] == s)
                         for s in consult.STATE_LABELS},
            "held": sum(1 for c in items if c["state"] in consult.HELD),
            "closed": sum(1 for c in items if c["state"] == "closed"),
            "followups": len(followups),
            "followups_closed": sum(1 for f in followups if f["state"] == "done")}


def opinion_figures(items):
    levels = [lv for lv in opinions.ORDER]
    return {"collected": len(items),
            "accepted": sum(1 for o in items if o["state"] not in ("submitted", "rejected")),
            "rejected": sum(1 for o in items if o["state"] == "rejected"),
            "issued": sum(1 for o in items if o["state"] in opinions.ISSUED),
            "reported": {lv: sum(1 for o in items if lv in o["reported"]) for lv in levels[1:]},
            "adopted": {lv: sum(1 for o in items if lv in o["adopted"]) for lv in levels},
            "instructions": sum(len(o["instructions"]) for o in items),
            # items with a leader's 批示 at each level (the work reports' 获批示 figures)
            "instructed": {lv: sum(1 for o in items if any(i.get("level") == lv
                                                           for i in o["instructions"]))
                           for lv in levels},
            "by_member_authored": sum(1 for o in items if o.get("author_member")),
            "on_behalf_of_citizens": sum(1 for o in items if not o.get("author_member"))}


def compute(year, requests, consultations, items, stations):
    active = {k: s for k, s in stations.items() if s.get("active", 1)}
    return {"year": year,
            "stations": {"total": len(active),   # deactivated stations are not counted
                         "by_kind": dict(Counter(s["kind"] for s in active.values())),
                         "below_minimum": sorted(k for k, s in active.items()
                                                 if not s.get("meets_minimum"))},
            "requests": requests_figures(requests, stations),
            "consultations": consultation_figures(consultations),
            "opinions": opinion_figures(items)}
