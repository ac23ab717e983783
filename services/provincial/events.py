"""The events the provincial adapter emits (see services/common/events.py)."""
from marshmallow import fields, validate

from services.common.events import Payload, Registry

EVENTS = Registry("provincial")


class DeliveryFacts(Payload):
    """One item sent to the provincial platform."""
    delivery_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(
        ["opinion", "proposal", "task_report", "figures"]))
    local_id = fields.String(required=True)


EVENTS.define("province.delivered", DeliveryFacts, "省级平台已接收报送", aggregate="delivery",
              record_id=fields.String(allow_none=True, required=True))
EVENTS.define("province.refused", DeliveryFacts, "省级平台拒收（或编码未对照），待处理后重试",
              aggregate="delivery", code=fields.String(required=True),
              message=fields.String(required=True))


class ProvinceOpinionFeedback(Payload):
    """The province's feedback on a 社情民意 item this platform reported."""
    opinion_id = fields.String(required=True)
    record_id = fields.String(allow_none=True, required=True)
    action = fields.String(required=True, validate=validate.OneOf(["adopt", "instruct", "report"]))
    level = fields.String(required=True, validate=validate.OneOf(["province", "national"]))
    leader = fields.String(allow_none=True, required=True)
    text = fields.String(allow_none=True, required=True)
    note = fields.String(allow_none=True, required=True)
    on = fields.String(allow_none=True, required=True)


EVENTS.define("province.opinion_feedback", ProvinceOpinionFeedback,
              "省级平台对报送的社情民意作出采用、批示或报送全国政协", aggregate="feedback")


class ProvinceProposalFeedback(Payload):
    """The provincial committee's progress on a proposal this platform forwarded."""
    proposal_id = fields.String(required=True)
    record_id = fields.String(allow_none=True, required=True)
    state = fields.String(required=True)
    state_label = fields.String(required=True)
    text = fields.String(allow_none=True, required=True)
    on = fields.String(allow_none=True, required=True)
    seq = fields.Integer(required=True, metadata={"description": "the province's feedback cursor"})


EVENTS.define("province.proposal_feedback", ProvinceProposalFeedback,
              "省政协对转来的提案的办理进展", aggregate="feedback")


class ProvinceTask(Payload):
    """A task the provincial committee published to this platform (with a due date)."""
    task_id = fields.String(required=True, metadata={"description": "the province's task id"})
    kind = fields.String(required=True, validate=validate.OneOf(
        ["research", "consultation", "notice"]))
    title = fields.String(required=True)
    content = fields.String(required=True)
    due_on = fields.String(required=True)
    issued_on = fields.String(allow_none=True, required=True)
    issuer = fields.String(allow_none=True, required=True)


EVENTS.define("province.task_published", ProvinceTask, "省政协下发任务（联合调研、协商议题、工作通知）",
              aggregate="feedback")
