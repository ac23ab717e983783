"""Meetings and activities: invitations, notices, sign-up, leave, check-in and
the attendance derived at the end. Pure: callers pass ``now`` and the rules.
"""
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from services.common.decisions import Aggregate, Decision, See, Visibility
from services.common.problems import Conflict, Forbidden, Invalid

KINDS = {"plenary": "全体会议", "standing": "常委会议", "topical": "专题协商",
         "counterpart": "对口协商", "sector": "界别协商", "inspection": "视察",
         "research": "调研", "training": "培训", "reading": "读书活动"}
LEAVE_STATES = {"requested": "待审批", "approved": "已批准", "refused": "未批准"}
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass
class MeetingRules:
    notice_days: dict = field(default_factory=lambda: {"plenary": 7, "default": 3})
    attendance_ratio: float = 2 / 3
    code_minutes: int = 30
    absence_flag: dict = field(default_factory=lambda: {"kinds": ["plenary"], "count": 3})

    @classmethod
    def from_config(cls, conf):
        conf = conf or {}
        rules = cls()
        if "notice_days" in conf:
            rules.notice_days = dict(rules.notice_days, **conf["notice_days"])
        ratio = conf.get("attendance_ratio")
        if ratio is not None:
            rules.attendance_ratio = _ratio(ratio)
        rules.code_minutes = int(conf.get("checkin_code_minutes", rules.code_minutes))
        if "absence_flag" in conf:
            rules.absence_flag = dict(rules.absence_flag, **conf["absence_flag"])
        return rules

    def notice_for(self, kind):
        return int(self.notice_days.get(kind, self.notice_days.get("default", 3)))


def _ratio(value):
    if isinstance(value, str) and "/" in value:
        a, b = value.split("/", 1)
        return int(a) / int(b)
    return float(value)


def days_of(meeting):
    first = datetime.fromisoformat(meeting["starts_at"]).date()
    last = date.fromisoformat(meeting["ends_on"])
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def invitees(spec, members):
    """Active members matching the invitation: everyone, or by role, committee,
    sector, or a list. ``members`` are member documents."""
    chosen = set()
    listed = set(spec.get("members") or ())
    for m in members:
        if m.get("status") != "active":
            continue
        if (spec.get("all") or m["_id"] in listed or m.get("role") in (spec.get("roles") or ())
                or m.get("sector") in (spec.get("sectors") or ())
                or set(m.get("committees") or ()) & set(spec.get("committees") or ())):
            chosen.add(m["_id"])
    return sorted(chosen)


def invitees_term(invited, members, default=None):
    """The term (届次) most of the invited members sit in: a meeting without a
    ``term`` belongs to its people's term, not to the newest one configured."""
    terms = Counter(m.get("term") for m in members if m["_id"] in set(invited) and m.get("term"))
    return terms.most_common(1)[0][0] if terms else default


def new_meeting(data, *, meeting_id, members, rules, term):
    errors = {}
    start = data["starts_at"]
    if data["ends_on"] < start.date():
        errors["ends_on"] = ["结束日期不能早于开始日期"]
    if (data["ends_on"] - start.date()).days > 30:
        errors["ends_on"] = ["会议活动不能超过 31 天"]
    invited = invitees(data["invite"], members)
    known = {m["_id"] for m in members if m.get("status") == "active"}
    unknown = [m for m in data["invite"].get("members") or () if m not in known]
    if unknown:
        errors["invite.members"] = [f"委员 {m} 不存在或不在任" for m in unknown]
    if not invited and not errors:
        errors["invite"] = ["没有符合条件的在任委员"]
    if errors:
        raise Invalid(errors)
    notice_on = start.date() - timedelta(days=rules.notice_for(data["kind"]))
    doc = {"_id": meeting_id, "kind": data["kind"], "title": data["title"],
           "place": data["place"], "starts_at": start.isoformat(timespec="minutes"),
           "ends_on": data["ends_on"].isoformat(),
           "term": data.get("term") or invitees_term(invited, members, term),
           "year": start.year, "invite": data["invite"], "invited": invited,
           "attendees": {m: {"signed_up": 0, "leave": None, "checkins": []} for m in invited},
           "state": "scheduled", "notice_on": notice_on.isoformat(), "notice_sent": 0,
           "codes": {}, "attendance": None}
    return doc, [("meeting.scheduled", payload(doc))]


# staff see every meeting; a member those they are invited to
MEETINGS = Aggregate("meetings", "会议活动", Visibility("会议活动", See("member", "invited")))


def decided(m, fields, events):
    """A step on meeting ``m`` as a decision: each event carries the
    meeting's public facts before the step plus its own fields."""
    return Decision(fields, [(t, payload(m, **body)) for t, body in events])


def payload(m, **extra):
    body = {"meeting_id": m["_id"], "kind": m["kind"], "title": m["title"],
            "place": m["place"], "starts_at": m["starts_at"], "ends_on": m["ends_on"],
            "term": m["term"], "year": m["year"], "invitees": list(m["invited"])}
    body.update(extra)
    return body


def _started(m, now):
    return now >= datetime.fromisoformat(m["starts_at"])


def _open(m):
    if m["state"] not in ("scheduled", "reopened"):
        raise Conflict("会议活动已结束", current_state=m["state"])


def _attendee(m, member_id):
    if member_id not in m["attendees"]:
        raise Forbidden("您不在本次会议活动的邀请名单中")
    return dict(m["attendees"][member_id])


def _set(m, member_id, entry):
    return {f"attendees.{member_id}": entry}


def sign_up(m, member_id, now):
    _open(m)
    entry = _attendee(m, member_id)
    if _started(m, now):
        raise Conflict("会议活动已开始，不能再报名", current_state=m["state"])
    entry["signed_up"] = 1
    return _set(m, member_id, entry), [("meeting.signed_up", {"member_id": member_id})]


def request_leave(m, member_id, reason, now):
    _open(m)
    entry = _attendee(m, member_id)
    if _started(m, now):
        raise Conflict("会议活动已开始，请假须在开始前提出", current_state=m["state"],
                       starts_at=m["starts_at"])
    if (entry.get("leave") or {}).get("state") == "approved":
        raise Conflict("请假已获批准", current_state=m["state"])
    entry["leave"] = {"state": "requested", "reason": reason,
                      "requested_at": now.isoformat(timespec="seconds")}
    return _set(m, member_id, entry), [("meeting.leave_requested", {"member_id": member_id})]


def decide_leave(m, member_id, approve, note, now):
    _open(m)
    entry = _attendee(m, member_id)
    leave = entry.get("leave") or {}
    if leave.get("state") != "requested":
        raise Conflict("该委员没有待审批的请假", current_state=m["state"])
    entry["leave"] = dict(leave, state="approved" if approve else "refused", note=note,
                          decided_at=now.isoformat(timespec="seconds"))
    return _set(m, member_id, entry), [("meeting.leave_decided",
                                        {"member_id": member_id, "approved": bool(approve)})]


def issue_code(m, day, now, minutes, code=None):
    """A check-in code shown at the venue, valid for ``minutes`` on ``day``;
    a new code replaces the previous ones."""
    _open(m)
    if day not in days_of(m):
        raise Invalid({"day": ["不是会议活动的日期"]})
    code = code or "".join(secrets.choice(CODE_ALPHABET) for _ in range(6))
    expires = now + timedelta(minutes=minutes)
    fields = {"codes": {code: {"day": day, "expires_at": expires.isoformat(timespec="seconds")}}}
    return code, fields


def check_in(m, member_id, day, now, code=None, by_staff=False):
    _open(m)
    entry = _attendee(m, member_id)
    if not by_staff:
        issued = (m.get("codes") or {}).get((code or "").upper())
        if issued is None:
            raise Invalid({"code": ["签到码无效"]})
        if now > datetime.fromisoformat(issued["expires_at"]):
            raise Invalid({"code": ["签到码已过期，请向会务人员索取新的签到码"]})
        if issued["day"] != now.date().isoformat():
            raise Invalid({"code": [f"该签到码只在 {issued['day']} 当天有效"]})
        day = issued["day"]
    if day not in days_of(m):
        raise Invalid({"day": ["不是会议活动的日期"]})
    if day in entry["checkins"]:
        return {}, []
    entry["checkins"] = sorted(entry["checkins"] + [day])
    return _set(m, member_id, entry), [("meeting.checked_in",
                                        {"member_id": member_id, "day": day})]


def close(m, rules, now=None):
    """Attendance at the end: attended when checked in on at least
    ``attendance_ratio`` of the days; else on leave if leave was approved;
    else absent. Not before the meeting has started."""
    _open(m)
    if now is not None and not _started(m, now):
        raise Conflict("会议活动尚未开始，不能结束并记录出勤", current_state=m["state"],
                       starts_at=m["starts_at"])
    days = len(days_of(m))
    result = {"attended": [], "leave": [], "absent": []}
    for member_id, entry in sorted(m["attendees"].items()):
        if len(entry["checkins"]) >= rules.attendance_ratio * days - 1e-9:
            result["attended"].append(member_id)
        elif (entry.get("leave") or {}).get("state") == "approved":
            result["leave"].append(member_id)
        else:
            result["absent"].append(member_id)
    fields = {"state": "closed", "attendance": result}
    return fields, [("meeting.attendance_recorded", dict(result))]


def notice(m, today):
    """The notice event when its day has come and it was not sent yet."""
    if m["state"] != "scheduled" or m.get("notice_sent") or today.isoformat() < m["notice_on"]:
        return {}, []
    start = datetime.fromisoformat(m["starts_at"]).date()
    return {"notice_sent": 1}, [("meeting.notice_due",
                                 {"days_ahead": (start - today).days})]


def absences(meetings, rules):
    """Members with at least ``absence_flag.count`` unexcused absences from
    meetings of the flagged kinds in one term."""
    counts = {}
    for m in meetings:
        if m["state"] != "closed" or m["kind"] not in rules.absence_flag["kinds"]:
            continue
        for member_id in (m.get("attendance") or {}).get("absent") or ():
            counts.setdefault((m["term"], member_id), []).append(m["_id"])
    return [{"term": term, "member_id": member_id, "absences": len(ids), "meetings": ids}
            for (term, member_id), ids in sorted(counts.items())
            if len(ids) >= int(rules.absence_flag["count"])]


def reopen(m, reason, actor, now):
    """A closed meeting opened again to correct its attendance (staff check in
    who was there, then close it again: the new attendance replaces the old
    one in every 履职档案). Each reopening is kept with who, when and why."""
    if m["state"] != "closed":
        raise Conflict("只有已结束的会议活动可以重新开启", current_state=m["state"])
    if not (reason or "").strip():
        raise Invalid({"reason": ["重新开启须写明原因"]})
    entry = {"at": now.isoformat(timespec="seconds"), "by": actor, "reason": reason.strip(),
             "attendance_before": m.get("attendance")}
    # "reopened", not "scheduled": the hourly scan does not close it again
    # while the staff are still correcting it
    fields = {"state": "reopened", "reopened": list(m.get("reopened") or []) + [entry]}
    return fields, [("meeting.reopened", {"reason": entry["reason"]})]
