"""Liaison entrypoints for tasks between a city and its counties (三级联动),
mixed into ``LiaisonService``."""
from nameko.rpc import rpc

from services.common.http import api, page, page_params
from services.common.inbox import idempotent
from services.common.linkage import DOWN, UP, linked_handler
from services.common.messaging import event_handler
from services.common.outbox import strip_internal
from services.common.problems import Invalid
from services.common.rpc import answers_only

from . import tasks
from .requests_api import with_id
from .schemas import TASK_ACTIONS, TaskView, task_in
from .tasks import TASKS

STAFF = ("admin", "reviewer")


class TasksApi:
    def task_view(self, doc, principal):
        return with_id(tasks.FLOW.view(tasks.view(strip_internal(doc), self.today()), principal))

    @api("POST", "/api/v1/tasks", roles=("admin",), query={}, body=task_in, response=TaskView,
         status=201, summary="向联网的县级政协下发任务")
    def create_task(self, request):
        """A task for the linked counties: one linked ``task.assigned`` each."""
        data = request.input
        if data.get("parent_task"):
            errors = tasks.passed_on_from(self.store.get("tasks", data["parent_task"]))
            if errors:
                raise Invalid(errors)
        doc, events, linked = tasks.new_task(
            data, task_id=f"{self.identity.org_code}-{self.new_id('T')}",
            org=self.identity.org_code, children=self.identity.child_names, today=self.today())
        doc = self.insert(request, TASKS, doc, ({}, events, linked))
        return 201, {"Location": f"/api/v1/tasks/{doc['_id']}"}, self.task_view(
            doc, request.principal)

    @api("GET", "/api/v1/tasks", roles=STAFF,
         query={"state": str, "kind": str, "year": int, "direction": str, "parent_task": str},
         paged=200,
         response=TaskView, summary="任务列表（下发的或收到的）")
    def list_tasks(self, request):
        """``direction=sent`` (given to counties) or ``received`` (from the city)."""
        limit, after = page_params(request)
        args = dict(request.query)
        direction = args.pop("direction", None)
        if direction not in (None, "sent", "received"):
            raise Invalid({"direction": ["取值应为 sent 或 received"]})
        if direction:
            args["source"] = {"$exists": direction == "received"}
        docs = self.store.page("tasks", args, limit, after)
        return page([self.task_view(d, request.principal) for d in docs], limit)

    @api("GET", "/api/v1/tasks/<string:task_id>", roles=STAFF, query={}, response=TaskView,
         summary="任务详情")
    def read_task(self, request, task_id):
        return self.task_view(TASKS.load(self.db, task_id), request.principal)

    @api("POST", "/api/v1/tasks/<string:task_id>/actions/<string:action>", query={},
         body=TASK_ACTIONS, response=TaskView, summary="签收或报告任务")
    def act_on_task(self, request, task_id, action):
        data = request.input

        def decide(doc):
            tasks.FLOW.check(doc, action, request.principal)
            return tasks.act(doc, action, data, today=self.today())
        doc = self.command(request, TASKS, task_id, decide, expected=data.pop("seq", None))
        return self.task_view(doc, request.principal)

    @linked_handler(DOWN, "task.assigned")
    @idempotent("liaison.on_task_assigned")
    def on_task_assigned(self, event):
        doc, events = tasks.received(event["payload"], origin=event["origin"],
                                     org=self.identity.org_code, today=self.today())
        self.insert(None, TASKS, doc, ({}, events), actor=f"org:{event['origin']}", once=True)

    @event_handler("provincial", "province.task_published")
    @idempotent("liaison.on_province_task")
    def on_province_task(self, event):
        """A task of the provincial committee, through the provincial adapter:
        a received copy, as a county keeps the city's."""
        province = str(self.identity.parent_org or "")
        doc, events = tasks.received(event["payload"], origin=province,
                                     org=self.identity.org_code, today=self.today(),
                                     via="province")
        self.insert(None, TASKS, doc, ({}, events), actor=f"org:{province}", once=True)

    @rpc
    @answers_only("provincial")
    def task_for_province(self, task_id, state):
        """A provincial task's acceptance or report (``state``) as the adapter
        sends it up, with the tasks this platform passed it on as; None before
        the task reached that step."""
        doc = self.store.get("tasks", task_id)
        if doc is None or (doc.get("source") or {}).get("via") != "province" or \
                not doc.get(f"{state}_on"):
            return None
        return {"task_id": task_id, "title": doc["title"], "state": state,
                "on": doc[f"{state}_on"], "report": doc.get("report") if state == "reported"
                else None,
                "passed_on_to": [t["_id"] for t in self.store.all(
                    "tasks", {"parent_task": task_id}, {"_id": 1})]}

    @linked_handler(UP, "task.progressed")
    @idempotent("liaison.on_task_progressed")
    def on_task_progressed(self, event):
        """A county accepted or reported on a task: onto its target (a
        Conflict with another county's report retries the delivery)."""
        self.linked_command(event, TASKS, event["payload"]["task_id"],
                            lambda task: tasks.progressed(task, event["origin"], event["payload"]),
                            sent=tasks.sent_to)
