"""The events the liaison service emits (see services/common/events.py)."""
from marshmallow import fields, validate

from services.common.events import Payload, Registry
from services.common.names import DOWN, UP

from . import citizen, consult, opinions, stations, tasks

EVENTS = Registry("liaison")


def Text(**kw):
    return fields.String(allow_none=True, **kw)


def Ids(**kw):
    return fields.List(fields.String(), **kw)


def OneOf(choices, **kw):
    return fields.String(validate=validate.OneOf(list(choices)), **kw)


def Imported():
    return fields.Boolean(metadata={"description": "replayed by a history import (notifies nobody)"})


def define(name, schema, summary, aggregate, **extra):
    EVENTS.define(name, schema, summary, aggregate=aggregate, **extra)


# --- stations ------------------------------------------------------------------
class StationFacts(Payload):
    """A station's public facts: no addresses or contacts of people."""
    station_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = OneOf(stations.KINDS, required=True)
    place_code = fields.String(required=True)
    township = Text(required=True)
    member_count = fields.Integer(required=True)


def station(name, summary, **extra):
    define(name, StationFacts, summary, "station", **extra)


station("station.created", "站点已建立")
station("station.updated", "站点信息变更", changed=Ids(required=True))
station("station.member_assigned", "委员包联站点", member_id=fields.String(required=True))
station("station.member_unassigned", "委员不再包联站点", member_id=fields.String(required=True),
        reason=fields.String(required=True, metadata={"description": "office, removed, term_ended …"}))
station("station.below_minimum", "议事室包联委员少于要求（1+2+N）",
        required=fields.Integer(required=True))
station("station.minimum_restored", "议事室包联委员恢复达标")
station("station.reception_scheduled", "委员接待日已安排", date=fields.Date(required=True),
        members=Ids(required=True))


class ActivityHeld(Payload):
    """An activity at a station (or a consultation meeting) crediting the
    members who took part (履职档案)."""
    activity_id = fields.String(required=True)
    source = OneOf(("station", "consultation"), required=True)
    station_id = Text(required=True)
    title = fields.String(required=True)
    members = Ids(required=True)
    date = fields.Date(required=True)
    year = fields.Integer(required=True)
    imported = Imported()


define("station.activity_held", ActivityHeld, "站点活动或协商会议已举行（计入参加委员的履职档案）",
       "station or consultation")


# --- citizen requests ------------------------------------------------------------
class RequestFacts(Payload):
    """A citizen request without the citizen's contact or description."""
    request_id = fields.String(required=True)
    station_id = fields.String(required=True)
    state = OneOf(citizen.FLOW.labels, required=True)
    category = OneOf(citizen.CATEGORIES, required=True)
    topic = Text(required=True)
    title = fields.String(required=True)
    member_id = Text(required=True)
    year = fields.Integer(required=True)
    channel = Text(required=True, metadata={"description": "how it was filed: online, station, phone"})
    imported = Imported()


def request(name, summary, **extra):
    define(name, RequestFacts, summary, "citizen request", **extra)


request("request.filed", "群众点单：诉求已登记")
request("request.dispatched", "社区派单：已派给委员", station_name=Text(required=True),
        accept_due=fields.String(required=True, metadata={"description": "accept by (local time)"}))
request("request.declined", "委员未接单", reason=fields.String(required=True))
request("request.accepted", "委员接单")
request("request.closed", "诉求已办结", resolved=fields.Boolean(required=True),
        on_time=fields.Boolean(required=True),
        contact_channel=fields.String(allow_none=True, required=True,
                                      validate=validate.OneOf(("sms", "email")),
                                      metadata={"description": "how the citizen can be told "
                                                "(never the contact)"}))
request("request.rated", "群众已评价", score=fields.Integer(required=True))
request("request.escalated", "未解决的诉求转为社情民意或提案",
        to=OneOf(("opinion", "proposal"), required=True), target_id=fields.String(required=True))
request("request.overdue", "诉求超时未处理（派单、接单或办结）",
        stage=OneOf(citizen.STAGE_OF.values(), required=True),
        due=fields.String(required=True), escalate_to=OneOf(("station", "office"), required=True))
request("request.returned_to_dispatch", "承办委员离任，诉求退回重新派单",
        reason=fields.String(required=True))


# --- consultations ---------------------------------------------------------------
class ConsultationFacts(Payload):
    consultation_id = fields.String(required=True)
    title = fields.String(required=True)
    source = OneOf(consult.SOURCES, required=True)
    station_id = Text(required=True)
    state = OneOf(consult.FLOW.labels, required=True)
    year = fields.Integer(required=True)
    members = Ids(required=True)
    imported = Imported()


def consultation(name, summary, **extra):
    define(name, ConsultationFacts, summary, "consultation", **extra)


consultation("consultation.created", "协商议题已确定（选题）")
consultation("consultation.advanced", "协商进入下一步（七步流程）",
             step=OneOf(consult.FLOW.labels, required=True),
             previous=OneOf(consult.FLOW.labels, required=True))
consultation("consultation.followup_added", "协商成果督办事项已登记",
             followup_id=fields.String(required=True), due=fields.Date(required=True),
             owner=fields.String(required=True))
consultation("consultation.followup_done", "督办事项已办结",
             followup_id=fields.String(required=True), on_time=fields.Boolean(required=True))
consultation("consultation.closed", "协商已反馈办结")


# --- 社情民意 --------------------------------------------------------------------
class OpinionFacts(Payload):
    """A 社情民意 item without its text (it may name citizens)."""
    opinion_id = fields.String(required=True)
    title = fields.String(required=True)
    author_member = Text(required=True)
    station_id = Text(required=True)
    state = OneOf(opinions.FLOW.labels, required=True)
    year = fields.Integer(required=True)
    category = Text(required=True)
    imported = Imported()


def opinion(name, summary, **extra):
    define(name, OpinionFacts, summary, "opinion", **extra)


Level = lambda **kw: OneOf(opinions.LEVELS, **kw)  # noqa: E731
opinion("opinion.submitted", "社情民意已提交")
opinion("opinion.accepted", "政协办公室已采用编辑")
opinion("opinion.rejected", "未采用", reason=fields.String(required=True))
opinion("opinion.edited", "已修改", version=fields.Integer(required=True))
opinion("opinion.issued", "已编发《社情民意》", issue=fields.String(required=True))
opinion("opinion.reported", "已向上级报送", level=Level(required=True),
        target_org=fields.String(required=True, metadata={"description": "org code reported to"}))
opinion("opinion.adopted", "被采用", level=Level(required=True))
opinion("opinion.instructed", "获领导批示", level=Level(required=True),
        instruction_id=fields.String(required=True), leader=fields.String(required=True))
opinion("opinion.received", "下级政协报送的社情民意进入本级", origin=fields.String(required=True))


class Forwarded(OpinionFacts):
    """An item a county reports to its city: with its text and author's name."""
    content = fields.String(required=True)
    author_name = Text(required=True)
    level = Level(required=True)


class OpinionFeedback(Payload):
    opinion_id = fields.String(required=True, metadata={"description": "the county's own id"})
    action = OneOf(opinions.FEEDBACK_ACTIONS, required=True)
    level = Level(allow_none=True, required=True)
    leader = Text(required=True)
    text = Text(required=True)
    note = Text(required=True)
    title = fields.String(required=True)
    year = fields.Integer(required=True)


define("opinion.forwarded", Forwarded, "社情民意报送市政协", "opinion", via=UP)
define("opinion.feedback", OpinionFeedback, "市政协对报送信息的采用、批示和上报反馈", "opinion",
       via=DOWN)


# --- tasks (三级联动) ------------------------------------------------------------
class TaskFacts(Payload):
    task_id = fields.String(required=True, metadata={"description": "a county's copy keeps the city's id"})
    kind = OneOf(tasks.KINDS, required=True)
    title = fields.String(required=True)
    due_on = fields.Date(required=True)
    state = fields.String(required=True)


def task(name, summary, **extra):
    define(name, TaskFacts, summary, "task", **extra)


task("task.created", "市政协下发任务", targets=Ids(required=True))
task("task.received", "收到上级（市政协或经省级平台适配服务的省政协）下发的任务",
     source_org=fields.String(required=True))
task("task.accepted", "已签收上级下发的任务", source_org=fields.String(load_default=None))
task("task.reported", "已报告上级下发任务的完成情况", source_org=fields.String(load_default=None))
task("task.updated", "某县签收或报告了任务", county=fields.String(required=True),
     county_state=OneOf(("accepted", "reported"), required=True))
task("task.completed", "各县均已报告，任务完成")
task("task.assigned", "任务下发到县（联合调研、协商议题、工作通知）", content=Text(required=True),
     parent_task=fields.String(load_default=None, metadata={
         "description": "the provincial task the city passes on with this one"}),
     via=DOWN)


class TaskProgress(Payload):
    task_id = fields.String(required=True)
    state = OneOf(("accepted", "reported"), required=True)
    on = fields.Date(required=True)
    summary = fields.String()
    completed_on = fields.Date()
    refs = Ids()
    on_time = fields.Boolean()


define("task.progressed", TaskProgress, "县级政协签收或报告任务（报市政协）", "task", via=UP)
