"""Provincial adapter (port 8105 at the city): the only way a platform talks to
the provincial 智慧政协 platform (docs/provincial.md).

Up: a 社情民意 item the office reports to the province (liaison's
``opinion.reported`` addressed to the province's org) becomes a delivery
record, through the inbox; a sender sends due deliveries, signed, with the
event id as Idempotency-Key, retrying transient failures with backoff and
jitter (tenacity) behind a circuit breaker (pybreaker), and parks what the
province refuses with its code. Down: provincial feedback, pulled by cursor,
becomes local events (``province.opinion_feedback``) that liaison applies to
the item, and that flow on down the link to the county it came from.
"""
import json
import logging
import uuid
from datetime import datetime, timedelta

from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy
from nameko.timer import timer
from prometheus_client import Counter, Gauge
from pymongo.errors import DuplicateKeyError

from services.common import rollup, service as platform
from services.common.lease import duty
from services.common.decisions import Decision
from services.common.http import api, page, page_params
from services.common.inbox import idempotent
from services.common.messaging import event_handler
from services.common.mongo import Mongo, find_page
from services.common.outbox import OutboxRelay
from services.common.problems import Invalid, NotFound, Unauthorized, Unavailable
from services.common.rpc import call

from . import domain
from .client import Open, ProvinceClient
from .events import EVENTS  # noqa: F401  the event registry Change.event checks
from .protocol import Unmapped, verify

log = logging.getLogger(__name__)

BACKLOG = Gauge("zhzx_province_backlog", "Deliveries not yet acknowledged or refused")
OLDEST = Gauge("zhzx_province_oldest_pending_seconds", "Age of the oldest delivery waiting")
INDEXES = {"deliveries": [([("state", 1), ("next_at", 1)], {}),
                          ([("record_id", 1)], {})],
           # callback nonces, kept past the ±300 s window
           "nonces": [([("seen_at", 1)], {"expireAfterSeconds": 3600})]}
CALLBACKS = Counter("zhzx_province_callbacks_total", "Callbacks from the province by outcome",
                    ["outcome"])
CALLBACK_PATH = "/api/v1/province/callbacks"
STATE = "state"   # the feedback cursor, one document


class Province(DependencyProvider):
    """The endpoint's client (one per service process: one breaker), or None
    when the platform names no province endpoint (``PROVINCE_URL``)."""

    def setup(self):
        config = self.container.config
        settings = config.get("PROVINCIAL") or {}
        url = config.get("PROVINCE_URL")
        self.client = None
        if url:
            self.client = ProvinceClient(
                url, config.get("PROVINCE_APP_ID") or config.get("ORG_CODE"),
                config.get("PROVINCE_SECRET") or "",   # RequiredSecrets refuses an empty one
                settings.get("algorithm", "hmac-sm3"),
                timeout=float(settings.get("timeout_seconds", 10)),
                fail_max=int(settings.get("breaker_failures", 5)),
                reset_timeout=float(settings.get("breaker_reset_seconds", 30)))

    def get_dependency(self, worker_ctx):
        return self.client


class ProvincialService(platform.PlatformService):
    name = "provincial"

    db = Mongo(indexes=INDEXES)
    outbox = OutboxRelay("deliveries", "feedback")
    province = Province()
    liaison = RpcProxy("liaison")
    proposals = RpcProxy("proposals")
    members = RpcProxy("members")

    @property
    def settings(self):
        return self.config.get("PROVINCIAL") or {}

    @property
    def province_org(self):
        return str(self.settings.get("org") or self.identity.parent_org or "")

    def utcnow(self):
        return datetime.utcnow().replace(microsecond=0)

    # --- up -------------------------------------------------------------------
    @event_handler("liaison", "opinion.reported")
    @idempotent("provincial.on_opinion_reported")
    def on_opinion_reported(self, event):
        """An item reported to the province: a delivery record, due now."""
        p = event["payload"]
        if p.get("level") != "province" or p.get("target_org") != self.province_org \
                or not self.province_org:
            return
        self.enqueue(event, "opinion", p["opinion_id"], self.liaison, "联络服务",
                     "opinion_for_province", p["opinion_id"])

    @event_handler("proposals", "proposal.forwarded")
    @idempotent("provincial.on_proposal_forwarded")
    def on_proposal_forwarded(self, event):
        """A proposal this platform forwards to the provincial committee."""
        p = event["payload"]
        if p.get("to") != self.province_org or not self.province_org:
            return
        self.enqueue(event, "proposal", p["proposal_id"], self.proposals, "提案服务",
                     "proposal_for_province", p["proposal_id"])

    @event_handler("liaison", "task.accepted")
    @idempotent("provincial.on_task_accepted")
    def on_task_accepted(self, event):
        self.task_progressed(event)

    @event_handler("liaison", "task.reported")
    @idempotent("provincial.on_task_reported")
    def on_task_reported(self, event):
        self.task_progressed(event)

    def task_progressed(self, event):
        """This platform accepted or reported on a task the province sent it:
        a delivery of that step (the province keeps one per state)."""
        p = event["payload"]
        if not self.province_org or p.get("source_org") != self.province_org:
            return
        self.enqueue(event, "task_report", f"{p['task_id']}:{p['state']}", self.liaison,
                     "联络服务", "task_for_province", p["task_id"], p["state"])

    def enqueue(self, event, kind, local_id, proxy, what, method, *args):
        """A delivery of ``kind`` for ``local_id``, due now, holding what
        ``proxy.method(*args)`` gives of it (nothing when that is None); the
        event's id is the Idempotency-Key of every attempt."""
        item = call(proxy, method, *args, what=what,
                    timeout=self.config.get("RPC_TIMEOUT_SECONDS"))
        if item is None:
            return
        doc = domain.new_delivery(kind, local_id, event["event_id"], item, self.utcnow())
        self.insert(None, domain.DELIVERIES, doc, actor="provincial", once=True)

    @timer(interval=60)
    @duty("figures")
    def count_figures(self):
        """This year's figures of this platform and each linked county,
        recounted every ``figures_seconds`` (default an hour; 0: on demand
        only, ``POST /api/v1/province/figures``); a changed one becomes a
        delivery."""
        if self.province is None:
            return
        every = float(self.settings.get("figures_seconds", 3600))
        if every <= 0:   # on demand only
            return
        last = (self.db.state.find_one({"_id": "figures"}) or {}).get("counted_at")
        if last and (self.utcnow() - datetime.fromisoformat(last)).total_seconds() < every:
            return
        try:
            self.recount(self.today().year)
        except Unavailable as exc:   # a service is down: the next recount tries again
            log.warning("yearly figures not recounted: %s", exc.detail)

    def recount(self, year):
        """Deliveries for the figures of ``year`` that changed: their orgs."""
        def ask(proxy, method, what):
            return call(proxy, method, year, what=what,
                        timeout=self.config.get("RPC_TIMEOUT_SECONDS"))
        items = domain.yearly_figures(
            year, own_org=self.identity.org_code, own_name=self.identity.org_name,
            level=self.identity.org_level, roster=call(
                self.members, "roster_figures", what="委员服务",
                timeout=self.config.get("RPC_TIMEOUT_SECONDS")),
            proposals=ask(self.proposals, "yearly_figures", "提案服务"),
            liaison=ask(self.liaison, "yearly_figures", "联络服务"),
            today=self.today().isoformat())
        changed = []
        for org, item in sorted(items.items()):
            doc = self.db.deliveries.find_one({"_id": f"figures:{org}:{year}"})
            change = domain.figures_change(doc, item, rollup.digest(item), uuid.uuid4().hex,
                                           self.utcnow())
            if change is None:
                continue
            if doc is None:
                self.insert(None, domain.DELIVERIES, change, actor="provincial", once=True)
            else:
                self.commit(None, domain.DELIVERIES, doc, Decision(change), actor="provincial")
            changed.append(org)
        self.db.state.update_one({"_id": "figures"}, {"$set": {
            "counted_at": self.utcnow().isoformat(timespec="seconds")}}, upsert=True)
        return changed

    @api("POST", "/api/v1/province/figures", roles=("admin",), query={"year": int},
         summary="立即重新统计并向省级平台报送年度数据（本级及各县）")
    def figures_now(self, request):
        if self.province is None:
            raise Invalid({"PROVINCE_URL": ["本平台未配置省级平台地址"]})
        year = request.query.get("year") or self.today().year
        if not 2000 <= year <= self.today().year:
            raise Invalid({"year": [f"年度应在 2000 至 {self.today().year} 之间"]})
        return {"year": year, "changed": self.recount(year)}

    @timer(interval=1)
    @duty("send")
    def send_due(self):
        """Every due delivery, one at a time (order kept per item); each step
        stored before the next."""
        if self.province is None:
            return
        interval = float(self.settings.get("send_seconds", 1))
        if interval > 1 and int(datetime.utcnow().timestamp()) % int(interval):
            return
        self.send_batch(int(self.settings.get("batch", 50)))

    def send_batch(self, limit):
        sent = 0
        now = self.utcnow()
        iso = now.isoformat(timespec="seconds")
        candidates = list(self.db.deliveries.find(
            {"$or": [{"state": "pending", "next_at": {"$lte": iso}},
                     {"state": "sending", "lease_until": {"$lte": iso}}]},
            {"item": 0}).sort("next_at", 1).limit(limit))
        lease = self.duties.lease("send")
        for brief in candidates:
            if not lease.keep():   # this replica lost the sender's lease: stop now
                break
            doc = self.db.deliveries.find_one({"_id": brief["_id"]})
            if doc is None or not domain.due(doc, self.utcnow()):
                continue
            fields = domain.claim(doc, self.utcnow(), float(self.settings.get("lease_seconds", 60)))
            claimed = self.db.deliveries.update_one(   # compare and set: one worker wins
                {"_id": doc["_id"], "state": doc["state"], "attempts": doc["attempts"]},
                {"$set": fields})
            if claimed.matched_count != 1:
                continue
            doc = dict(doc, **fields)
            if not self.send_one(doc):
                break    # the breaker is open: the rest wait too
            sent += 1
        self.measure()
        return sent

    def send_one(self, doc):
        """Send one claimed delivery; False when the breaker is open."""
        try:
            body = domain.BODIES[doc["kind"]](doc["item"], own_org=self.identity.org_code,
                                              province_org=self.province_org,
                                              tables=self.settings.get("codes") or {})
        except Unmapped as exc:
            self.commit(None, domain.DELIVERIES, doc,
                        Decision(*domain.unmapped(doc, exc, self.utcnow())), actor="provincial")
            log.warning("delivery %s parked: %s", doc["_id"], exc)
            return True
        try:
            method, path, label = domain.endpoint(doc)
            answer = self.province.call(method, path, body=body, key=doc["key"], endpoint=label)
        except Open:
            self.commit(None, domain.DELIVERIES, doc, Decision({
                "state": "pending", "lease_until": None,
                "next_at": (self.utcnow() + timedelta(seconds=5)).isoformat()}),
                actor="provincial")
            return False
        fields, events = domain.answered(doc, answer, self.utcnow())
        self.commit(None, domain.DELIVERIES, doc, Decision(fields, events), actor="provincial")
        if answer.kind == "permanent":
            log.warning("delivery %s refused by the province: %s", doc["_id"], answer.code)
        return True

    def measure(self):
        waiting = {"state": {"$in": ["pending", "sending"]}}
        BACKLOG.set(self.db.deliveries.count_documents(waiting))
        oldest = self.db.deliveries.find_one(waiting, {"created_at": 1}, sort=[("created_at", 1)])
        OLDEST.set((self.utcnow() - datetime.fromisoformat(oldest["created_at"])).total_seconds()
                   if oldest else 0)

    # --- down -----------------------------------------------------------------
    @timer(interval=5)
    @duty("pull")
    def pull_feedback(self):
        if self.province is None:
            return
        every = float(self.settings.get("pull_seconds", 5))
        if every > 5 and int(datetime.utcnow().timestamp()) % int(every) >= 5:
            return
        self.pull(pages=int(self.settings.get("pull_pages", 10)))

    @timer(interval=60)
    @duty("reconcile")
    def reconcile(self):
        """Items the province has but whose feedback may have been missed (a
        lost callback, a province restored from a backup): each acknowledged
        delivery is asked about, oldest check first, a few per pass."""
        if self.province is None:
            return
        self.reconcile_some(int(self.settings.get("reconcile_batch", 20)))

    def reconcile_some(self, limit):
        taken = 0
        docs = self.db.deliveries.find({"state": "acknowledged", "kind": {
            "$in": ["opinion", "proposal"]}}, {"record_id": 1}).sort(
            "checked_at", 1).limit(limit)
        for doc in list(docs):
            try:
                answer = self.province.call("GET", f"/api/v1/records/{doc['record_id']}",
                                            endpoint="records")
            except Open:
                return taken
            if answer.kind == "ok":
                for item in answer.body.get("feedback") or []:
                    taken += self.take_feedback(dict(item, record_id=doc["record_id"]))
            self.db.deliveries.update_one({"_id": doc["_id"]}, {"$set": {
                "checked_at": self.utcnow().isoformat(timespec="seconds")}})
        return taken

    @api("POST", "/api/v1/province/reconcile", roles=("admin",), query={},
         summary="立即向省级平台核对已接收事项的反馈")
    def reconcile_now(self, request):
        if self.province is None:
            raise Invalid({"PROVINCE_URL": ["本平台未配置省级平台地址"]})
        return {"applied": self.reconcile_some(int(self.settings.get("reconcile_batch", 20)))}

    @api("POST", CALLBACK_PATH, public=True, parse_body=False, query={}, statuses=(401,),
         summary="省级平台推送的反馈（按接口规范签名，校验不通过为 401）")
    def callback(self, request):
        """Feedback pushed by the province, signed the way our calls are: an
        unsigned, forged, stale or replayed one is refused (401, its code)
        and nothing is applied."""
        body = request.get_data()
        headers = {k: request.headers.get(k) for k in ("X-App-Id", "X-Timestamp", "X-Nonce",
                                                         "X-Signature")}

        def seen(nonce):
            try:
                self.db.nonces.insert_one({"_id": nonce, "seen_at": self.utcnow()})
                return False
            except DuplicateKeyError:   # this nonce was used
                return True
        code = verify(self.config.get("PROVINCE_SECRET") or "", "POST", CALLBACK_PATH,
                      dict(request.args), body, headers,
                      self.settings.get("algorithm", "hmac-sm3"), seen_nonce=seen) \
            if self.province is not None else "NO_ENDPOINT"
        if code is None and headers["X-App-Id"] != self.province_org:
            code = "AUTH_APP"
        if code:
            CALLBACKS.labels(code).inc()
            log.warning("callback refused: %s", code)
            raise Unauthorized("省级平台回调未通过校验", code=code)
        try:
            items = json.loads(body or b"{}").get("items") or []
        except (ValueError, AttributeError):
            raise Invalid({"items": ["不是有效的 JSON"]}) from None
        taken = sum(self.take_feedback(item) for item in sorted(
            (i for i in items if str(i.get("cursor", "")).isdigit()),
            key=lambda i: int(i["cursor"])))
        CALLBACKS.labels("accepted").inc()
        return {"accepted": taken}

    def pull(self, pages=10):
        """Feedback since the stored cursor, each piece once as a local event."""
        applied = 0
        for _ in range(pages):
            state = self.db.state.find_one({"_id": "feedback"}) or {"cursor": "0"}
            try:
                answer = self.province.call("GET", "/api/v1/feedback", endpoint="feedback",
                                            query={"since": state["cursor"], "limit": "100"})
            except Open:
                return applied
            if answer.kind != "ok":
                return applied
            items = sorted((i for i in answer.body.get("items") or []
                            if str(i.get("cursor", "")).isdigit()),
                           key=lambda i: int(i["cursor"]))   # in order, however they came
            for item in items:
                applied += self.take_feedback(item)
            top = max([int(state["cursor"])] + [int(i["cursor"]) for i in items])
            self.db.state.update_one({"_id": "feedback"}, {"$set": {"cursor": str(top)}},
                                     upsert=True)
            if not items:
                return applied
        return applied

    def take_feedback(self, item):
        delivery = self.db.deliveries.find_one({"record_id": item.get("record_id")}) \
            if item.get("record_id") else None
        event = domain.feedback_event(item, delivery)
        doc = {"_id": f"fb-{item.get('cursor')}", "kind": item.get("kind"),
               "record_id": item.get("record_id"), "received_at": self.utcnow().isoformat(),
               "applied": event is not None}
        created = self.insert(None, domain.FEEDBACK, doc, Decision(events=[event] if event
                                                                   else []),
                              actor="org:" + self.province_org, once=True)
        return 1 if created and event else 0

    # --- HTTP -----------------------------------------------------------------
    @api("GET", "/api/v1/deliveries", roles=("admin",),
         query={"state": str, "kind": str}, paged=500, summary="向省级平台的报送记录")
    def deliveries(self, request):
        query = {k: v for k, v in request.query.items() if v}
        limit, after = page_params(request, default=100, maximum=500)
        docs = find_page(self.db.deliveries, query, limit, after, {"item.content": 0})
        return dict(page([self.view(d) for d in docs], limit),
                    count=self.db.deliveries.count_documents(query))

    @api("GET", "/api/v1/deliveries/<path:delivery_id>", roles=("admin",), query={},
         summary="一条报送记录")
    def delivery(self, request, delivery_id):
        return self.view(self.load_delivery(delivery_id, {"item.content": 0}))

    def load_delivery(self, delivery_id, projection=None):
        doc = self.db.deliveries.find_one({"_id": delivery_id}, projection)
        if doc is None:
            raise NotFound(f"报送记录 {delivery_id} 不存在")
        return doc

    @api("POST", "/api/v1/deliveries/<path:delivery_id>/retry", roles=("admin",), query={},
         summary="重试被拒收的报送（改正数据或编码对照之后）")
    def retry(self, request, delivery_id):
        doc = self.load_delivery(delivery_id)
        fields = domain.retried(doc, self.utcnow())
        if fields is None:
            raise Invalid({"state": ["只有被拒收的报送可以重试"]})
        return self.view(self.commit(request, domain.DELIVERIES, doc, Decision(fields)))

    @api("GET", "/api/v1/province/health", roles=("admin",), query={},
         summary="与省级平台的连接：最近成功、熔断器、积压")
    def health(self, request):
        client = self.province
        waiting = {"state": {"$in": ["pending", "sending"]}}
        oldest = self.db.deliveries.find_one(waiting, {"created_at": 1}, sort=[("created_at", 1)])
        return {
            "endpoint": client.url if client else None,
            "breaker": client.breaker_state if client else None,
            "last_success": _ts(client.last_success) if client else None,
            "last_error": dict(client.last_error, at=_ts(client.last_error["at"]))
            if client and client.last_error else None,
            "backlog": self.db.deliveries.count_documents(waiting),
            "refused": self.db.deliveries.count_documents({"state": "refused"}),
            "oldest_pending_seconds": (self.utcnow() - datetime.fromisoformat(
                oldest["created_at"])).total_seconds() if oldest else None,
            "feedback_cursor": (self.db.state.find_one({"_id": "feedback"}) or {}).get("cursor"),
        }

    @staticmethod
    def view(doc):
        out = {k: v for k, v in doc.items() if not k.startswith("_") and k != "item"}
        item = doc.get("item") or {}
        out.update(id=doc["_id"], state_label=domain.STATES.get(doc["state"]),
                   title=item.get("title"))
        return out


def _ts(epoch):
    return datetime.utcfromtimestamp(epoch).isoformat(timespec="seconds") + "Z" if epoch else None
