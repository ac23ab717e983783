"""The events the members service emits (see services/common/events.py)."""
from marshmallow import fields, validate

from services.common.events import Payload, Registry
from services.common.names import UP

from . import domain, meetings

EVENTS = Registry("members")

Code = lambda table, **kw: fields.String(validate=validate.OneOf(list(table)), **kw)  # noqa: E731
Text = lambda **kw: fields.String(allow_none=True, **kw)  # noqa: E731
Ids = lambda **kw: fields.List(fields.String(), **kw)  # noqa: E731


class MemberPublic(Payload):
    """A membership's public fields: never phone, ID number or birth date."""
    member_id = fields.String(required=True)
    person_id = fields.String(metadata={"description": "keyed hash of the ID number"})
    org = fields.String()
    name = fields.String()
    gender = Code(domain.GENDERS)
    ethnicity = Text()
    party = Code(domain.PARTIES)
    sector = Text()
    committees = Ids()
    role = Code(domain.ROLES)
    term = Text()
    employer = Text()
    post = Text()
    status = Code(domain.STATUSES)
    status_reason = Text()
    appointment = Code(domain.APPOINTMENTS, allow_none=True)
    appointed_on = fields.Date(allow_none=True)
    ended_on = fields.Date(allow_none=True)
    stations = Ids()


class MemberUpdated(Payload):
    changed = Ids(required=True, metadata={"description": "names of the changed fields"})
    member = fields.Nested(MemberPublic, required=True)


class MemberEnded(Payload):
    member = fields.Nested(MemberPublic, required=True)
    status = Code(("removed", "resigned", "term_ended"), required=True)
    reason = Text(required=True)
    ended_on = fields.Date(required=True)


class RosterEntry(Payload):
    """A membership as the city keeps it in its roster (public fields only)."""
    member_id = fields.String(required=True)
    name = fields.String(required=True)
    gender = Code(domain.GENDERS, allow_none=True)
    ethnicity = Text()
    party = Code(domain.PARTIES, allow_none=True)
    sector = Text()
    committees = Ids(allow_none=True)
    role = Code(domain.ROLES, allow_none=True)
    term = Text()
    employer = Text()
    post = Text()
    status = Code(domain.STATUSES, required=True)
    org = fields.String(required=True)
    person_id = Text()


class MeetingFacts(Payload):
    """A meeting's public facts; each type adds its own fields."""
    meeting_id = fields.String(required=True)
    kind = Code(meetings.KINDS, required=True)
    title = fields.String(required=True)
    place = Text(required=True)
    starts_at = fields.String(required=True, metadata={"description": "local time, YYYY-MM-DDTHH:MM"})
    ends_on = fields.Date(required=True)
    term = Text(required=True)
    year = fields.Integer(required=True)
    invitees = Ids(required=True)


def member_id():
    return fields.String(required=True)


EVENTS.define("member.appointed", MemberPublic, "委员任命（换届或增补）", aggregate="membership")
EVENTS.define("member.updated", MemberUpdated, "委员信息变更", aggregate="membership")
EVENTS.define("member.removed", MemberEnded, "委员撤销或辞去", aggregate="membership")
EVENTS.define("member.term_ended", MemberEnded, "委员届满离任", aggregate="membership")
EVENTS.define("member.synced", RosterEntry, "县级委员名册同步到市（每次变更后）",
              aggregate="membership", via=UP)

EVENTS.define("meeting.scheduled", MeetingFacts, "会议活动已安排", aggregate="meeting")
EVENTS.define("meeting.notice_due", MeetingFacts, "会议通知到期（全体会议提前7天，其他3天）",
              aggregate="meeting", days_ahead=fields.Integer(required=True))
EVENTS.define("meeting.signed_up", MeetingFacts, "委员报名", aggregate="meeting",
              member_id=member_id())
EVENTS.define("meeting.leave_requested", MeetingFacts, "委员请假", aggregate="meeting",
              member_id=member_id())
EVENTS.define("meeting.leave_decided", MeetingFacts, "请假已审批", aggregate="meeting",
              member_id=member_id(), approved=fields.Boolean(required=True))
EVENTS.define("meeting.checked_in", MeetingFacts, "委员签到", aggregate="meeting",
              member_id=member_id(), day=fields.Date(required=True))
EVENTS.define("meeting.attendance_recorded", MeetingFacts, "会议结束，出勤已记录（计入履职档案）",
              aggregate="meeting", attended=Ids(required=True), leave=Ids(required=True),
              absent=Ids(required=True))
EVENTS.define("meeting.reopened", MeetingFacts, "已结束的会议重新开启以更正出勤",
              aggregate="meeting", reason=fields.String(required=True))
EVENTS.define("member.absence_flagged", MeetingFacts, "委员本届无故缺席达到通报次数",
              aggregate="meeting", member_id=member_id(),
              absences=fields.Integer(required=True), meetings=Ids(required=True))
