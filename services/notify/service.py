"""Notify service: every actionable step reaches the right person, on their
channels, once (HTTP port 8004).

Events of members, proposals and liaison come in through the inbox (applied
once); rules (data) turn them into in-app notifications and one delivery per
external channel the person chose. A dispatcher sends due deliveries
concurrently with timeouts and retries with backoff; quiet hours and the daily
digest are applied at send time, so ``POST /api/v1/notify/dispatch?now=…``
runs it as of any moment. Contact addresses are fetched over RPC at send time
and never stored, logged or put in metric labels.
"""
import fnmatch
import json
import logging
from datetime import datetime, timedelta

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer
from prometheus_client import Counter, Gauge

from services.common import rpc as rpc_clients
from services.common import service as platform
from services.common.lease import duty
from services.common.http import api, moment_param, page, page_params
from services.common.inbox import Inbox, lease_seconds
from services.common.messaging import event_handler
from services.common.mongo import Mongo, find_page
from services.common.problems import Forbidden, Invalid, NotFound, Unavailable
from services.members.client import MembersLookup

from . import channels, policy
from . import rules as notify_rules
from .schemas import preferences_in
from .store import INDEXES, NotifyStore, insert_new

log = logging.getLogger(__name__)

DELIVERIES = Counter("zhzx_notify_deliveries_total", "Deliveries by channel and outcome",
                     ["channel", "outcome"])
RETRIES = Counter("zhzx_notify_retries_total", "Delivery attempts that will be retried",
                  ["channel"])
QUEUE_AGE = Gauge("zhzx_notify_queue_age_seconds",
                  "Age of the oldest due delivery waiting, per channel", ["channel"])
NOTIFICATIONS = Counter("zhzx_notify_notifications_total", "In-app notifications created",
                        ["kind"])
SCOPED = ("member", "unit", "station", "leader")
OFFICE_INBOX = "office:committee"   # the committee office (政协办公室), read by admins
UNRESOLVED = object()  # a recipient whose contacts could not be fetched this pass


class LoadedRules(DependencyProvider):
    """The rules of ``NOTIFY.rules``, checked when the service starts: a bad
    rule stops the start with its id instead of failing on the first event."""

    def setup(self):
        self.rules = notify_rules.load((self.container.config.get("NOTIFY") or {}).get("rules"))

    def get_dependency(self, worker_ctx):
        return self.rules


def _iso(dt):
    return dt.isoformat(timespec="seconds")


class NotifyService(MembersLookup, platform.PlatformService):
    name = "notify"

    db = Mongo(indexes=INDEXES)
    members = RpcProxy("members")
    proposals = RpcProxy("proposals")
    liaison = RpcProxy("liaison")
    loaded_rules = LoadedRules()

    @property
    def store(self):
        return NotifyStore(self.db)

    @property
    def settings(self):
        return self.config.get("NOTIFY") or {}

    def rules(self):
        return self.loaded_rules

    def hooks(self, event_type):
        return [h for h in self.settings.get("webhooks") or ()
                if any(fnmatch.fnmatchcase(event_type, p)
                       for p in h.get("events") or ("*",))]

    # --- events in ------------------------------------------------------------
    @event_handler("proposals", "#")
    def on_proposals_event(self, event):
        self.take(event)

    @event_handler("liaison", "#")
    def on_liaison_event(self, event):
        self.take(event)

    @event_handler("members", "#")
    def on_members_event(self, event):
        self.take(event)

    def smtp_settings(self):
        """The SMTP settings, signed with this platform's own name (长治市政协
        for the city) unless ``sender_name`` is configured explicitly."""
        smtp = dict(self.settings.get("smtp") or {})
        smtp.setdefault("sender_name", f"{self.identity.org_name}政协")
        return smtp

    def take(self, event):
        if (event.get("payload") or {}).get("imported"):
            return   # history replayed by an import: nobody is to act on it
        payload = event.get("payload") or {}
        if payload.get("source_org"):   # texts name the other platform, not its code
            event = dict(event, payload=dict(
                payload, source_org_name=self.identity.org_name_of(payload["source_org"])))
        notes = notify_rules.notifications(event, self.rules())
        hooks = self.hooks(event["type"])
        if not notes and not hooks:
            return
        Inbox(self.db, lease_seconds=lease_seconds(self.config)).run(
            "notify.take", event["event_id"],
            lambda: self.store_notifications(event, notes, hooks), event["type"])

    def store_notifications(self, event, notes, hooks):
        now = _iso(self.now())
        prefs = self.preferences_of(n["recipient"] for n in notes)
        available = policy.configured_channels(self.settings)
        deliveries = []
        for n in notes:
            n.update(created_at=now, read=0, read_at=None)
            # an office inbox is read in the platform; it has no address to send
            # to; a citizen is reached only on the channel the station recorded
            if n["recipient"].startswith("office:"):
                channels = []
            elif n["recipient"].startswith("citizen:"):
                recorded = (event.get("payload") or {}).get("contact_channel")
                channels = [c for c in available if c == recorded]
            else:
                channels = prefs[n["recipient"]].channels_for(n["kind"], available)[1:]
            for channel in channels:
                deliveries.append(self.new_delivery(f"{n['_id']}:{channel}", channel,
                                                    n["recipient"], now, notification=n["_id"],
                                                    urgent=n["urgent"], kind=n["kind"]))
        for hook in hooks:
            deliveries.append(self.new_delivery(
                f"{event['event_id']}:webhook:{hook['id']}", "webhook", f"webhook:{hook['id']}",
                now, urgent=1, kind="webhook", event_type=event["type"],
                body=json.dumps(event, ensure_ascii=False, sort_keys=True)))
        # deliveries first: a notification in the inbox means its deliveries exist
        insert_new(self.store.deliveries, deliveries)
        created = insert_new(self.store.notifications, notes)
        for n in notes[:created]:
            NOTIFICATIONS.labels(n["kind"]).inc()
        return created

    @staticmethod
    def new_delivery(delivery_id, channel, recipient, now, **extra):
        return dict({"_id": delivery_id, "channel": channel, "recipient": recipient,
                     "state": "pending", "attempts": 0, "due_at": now, "created_at": now,
                     "sent_at": None, "error": None}, **extra)

    def preferences_of(self, recipients):
        recipients = list(recipients)
        stored = self.store.prefs(recipients)
        defaults = self.settings.get("defaults") or {}
        return {r: policy.Preferences.of(stored.get(r), defaults) for r in recipients}

    # --- dispatching ------------------------------------------------------------
    @timer(interval=1)
    @duty("dispatch")
    def tick(self):
        if self.settings.get("auto_dispatch", True):
            self.dispatch(self.now())

    def dispatch(self, now):
        """One pass: recover stale claims, merge digests, send what is due."""
        store = self.store
        report = {"now": _iso(now), "sent": 0, "failed": 0, "retrying": 0, "deferred": 0,
                  "digested": 0, "skipped": 0}
        store.deliveries.update_many({"state": "sending", "lease_until": {"$lt": _iso(now)}},
                                     {"$set": {"state": "pending"}})
        report["digested"] = self.merge_digests(now)
        due = store.due(_iso(now))
        self.measure_queue(due, now)
        prefs = self.preferences_of(d["recipient"] for d in due)
        digest_at = policy.clock(self.settings.get("digest_time", "08:00"))
        to_send = []
        for d in due:
            if d["channel"] in policy.EXTERNAL:
                action, value = policy.hold(d, prefs[d["recipient"]], now, digest_at)
                if action == "later":
                    store.settle(d["_id"], due_at=_iso(value))
                    report["deferred"] += 1
                    continue
                if action == "digest":
                    store.settle(d["_id"], state="digest", digest_day=value)
                    report["deferred"] += 1
                    continue
            if store.claim(d, _iso(now + timedelta(seconds=120))):
                to_send.append(d)
        contacts = self.contacts_for(to_send)
        pool = eventlet.GreenPool(int(self.settings.get("concurrency", 20)))
        for d, outcome in zip(to_send, pool.imap(lambda d: self.send_one(d, contacts, now),
                                                 to_send)):
            report[outcome] += 1
        return report

    def measure_queue(self, due, now):
        oldest = {}
        for d in due:
            oldest.setdefault(d["channel"], d["created_at"])
        for channel in policy.EXTERNAL + ("webhook",):
            age = (now - datetime.fromisoformat(oldest[channel])).total_seconds() \
                if channel in oldest else 0
            QUEUE_AGE.labels(channel).set(max(age, 0))

    def merge_digests(self, now):
        """Items held for the digest whose day has come become one delivery
        per person and channel."""
        digest_at = policy.clock(self.settings.get("digest_time", "08:00"))
        today = now.date().isoformat()
        held = list(self.store.deliveries.find({"state": "digest"}))
        ready = [d for d in held if d["digest_day"] < today or (
            d["digest_day"] == today and now.time() >= digest_at)]
        groups = {}
        for d in ready:
            groups.setdefault((d["recipient"], d["channel"], d["digest_day"]), []).append(d)
        for (recipient, channel, day), items in groups.items():
            digest_id = f"digest:{recipient}:{channel}:{day}"
            insert_new(self.store.deliveries, [self.new_delivery(
                digest_id, channel, recipient, _iso(now), urgent=0, kind="digest",
                digest_of=[d["notification"] for d in sorted(items,
                                                             key=lambda x: x["created_at"])])])
            for d in items:
                self.store.settle(d["_id"], state="digested", digest=digest_id)
        return len(ready)

    def contacts_for(self, deliveries):
        """Addresses of every recipient about to be sent to, fetched now and
        kept only in memory for this pass."""
        members = sorted({d["recipient"].split(":", 1)[1] for d in deliveries
                          if d["recipient"].startswith("member:")})
        found = {}
        if members:
            try:
                found.update({f"member:{k}": v for k, v in rpc_clients.call(
                    self.members, "get_contacts", members, what="委员服务",
                    timeout=self.config.get("RPC_TIMEOUT_SECONDS")).items()})
            except Unavailable:  # retried later; other recipients go on
                found.update({f"member:{m}": UNRESOLVED for m in members})
        owners = {"unit": (self.proposals, "get_unit_contacts", "提案服务"),
                  "station": (self.liaison, "get_station_contacts", "联络站服务"),
                  "citizen": (self.liaison, "get_request_contact", "联络站服务")}
        for recipient in sorted({d["recipient"] for d in deliveries}):
            kind, rid = recipient.split(":", 1)
            if kind in owners:
                proxy, method, what = owners[kind]
                try:
                    contact = rpc_clients.call(proxy, method, rid, what=what,
                                               timeout=self.config.get("RPC_TIMEOUT_SECONDS"))
                except Unavailable:  # retried later; other recipients go on
                    found[recipient] = UNRESOLVED
                    continue
                if contact:
                    found[recipient] = contact
        return found

    def message_of(self, d):
        if d.get("digest_of"):
            items = list(self.store.notifications.find({"_id": {"$in": d["digest_of"]}}))
            items.sort(key=lambda n: (n.get("occurred_at") or n["created_at"], n["_id"]))
            return policy.digest_text(items)
        n = self.store.notifications.find_one({"_id": d["notification"]})
        return n["title"], n["body"]

    def send_one(self, d, contacts, now):
        channel = d["channel"]
        try:
            if channel == "webhook":
                hook = {h["id"]: h for h in self.settings.get("webhooks") or ()}.get(
                    d["recipient"].split(":", 1)[1])
                if hook is None:
                    raise channels.NoAddress("webhook no longer configured")
                channels.send_webhook(hook, d["body"].encode(), d["event_type"],
                                      allowed_hosts=self.settings.get("webhook_hosts"))
            else:
                contact = contacts.get(d["recipient"])
                if contact is UNRESOLVED:
                    raise channels.SendError("contacts unavailable (owning service down)")
                to = channels.addresses(contact or {}, channel)
                if not to:
                    raise channels.NoAddress(f"no {channel} address")
                title, body = self.message_of(d)
                if channel == "email":
                    channels.send_email(self.smtp_settings(), to, title, body)
                else:
                    channels.send_provider(self.settings.get(channel) or {}, channel, to,
                                           title, body, d.get("kind"))
        except channels.NoAddress as exc:
            self.store.settle(d["_id"], state="skipped", error=str(exc))
            DELIVERIES.labels(channel, "skipped").inc()
            return "skipped"
        except (channels.SendError, KeyError) as exc:
            return self.failed(d, f"{type(exc).__name__}: {exc}", now)
        self.store.settle(d["_id"], state="sent", sent_at=_iso(self.now()),
                          attempts=d["attempts"] + 1, error=None)
        DELIVERIES.labels(channel, "sent").inc()
        return "sent"

    def failed(self, d, error, now):
        attempts = d["attempts"] + 1
        if attempts >= int(self.settings.get("max_attempts", 5)):
            self.store.settle(d["_id"], state="failed", attempts=attempts, error=error,
                              failed_at=_iso(now))
            DELIVERIES.labels(d["channel"], "failed").inc()
            log.warning("delivery failed", extra={"delivery_id": d["_id"],
                                                  "channel": d["channel"], "error": error})
            return "failed"
        wait = policy.backoff(attempts, float(self.settings.get("backoff_seconds", 5)),
                              float(self.settings.get("backoff_max_seconds", 600)))
        self.store.settle(d["_id"], state="pending", attempts=attempts, error=error,
                          due_at=_iso(now + timedelta(seconds=wait)))
        RETRIES.labels(d["channel"]).inc()
        return "retrying"

    @api("POST", "/api/v1/notify/dispatch", roles=("admin",), query={"now": str},
         summary="立即执行一次投递")
    def dispatch_now(self, request):
        """Runs a dispatch pass now (a timer runs it every second);
        ``?now=YYYY-MM-DDTHH:MM`` runs it as of another moment."""
        return self.dispatch(moment_param(request, "now", self.now()))

    # --- the in-app inbox ----------------------------------------------------------
    def recipient(self, request, given=None):
        p = request.principal
        own = sorted(f"{k}:{i}" for k in SCOPED for i in p.ids(k))
        if given:
            if given in own or p.is_admin:
                return given
            raise Forbidden("只能查看本人的消息")
        if len(own) == 1:
            return own[0]
        if not own and p.is_admin:   # the committee office's own inbox
            return OFFICE_INBOX
        raise Invalid({"recipient": ["请指明收件人，如 member:<编号>"]})

    @staticmethod
    def note_view(n):
        out = {k: v for k, v in n.items() if k != "_id"}
        out["id"] = n["_id"]
        out["read"] = bool(n.get("read"))
        out["urgent"] = bool(n.get("urgent"))
        return out

    @api("GET", "/api/v1/inbox", query={"recipient": str, "unread": str}, paged=200,
         summary="站内消息（收件箱）")
    def inbox(self, request):
        recipient = self.recipient(request, request.args.get("recipient"))
        limit, after = page_params(request, default=50, maximum=200)   # the kernel's cursor
        before = after.split("|", 1) if after else None   # newest first: (created_at, id)
        if before is not None and len(before) != 2:
            raise Invalid({"cursor": ["分页游标无效"]})
        docs = self.store.inbox(recipient, limit, before, request.args.get("unread") == "1")
        listed = page([dict(self.note_view(n), _key=f"{n['created_at']}|{n['_id']}")
                       for n in docs], limit, key="_key")
        listed["items"] = [{k: v for k, v in n.items() if k != "_key"}
                           for n in listed["items"]]
        return dict(listed, recipient=recipient, unread=self.store.unread(recipient))

    @api("GET", "/api/v1/inbox/unread-count", query={"recipient": str}, summary="未读消息数")
    def unread_count(self, request):
        recipient = self.recipient(request, request.args.get("recipient"))
        return {"recipient": recipient, "unread": self.store.unread(recipient)}

    @api("POST", "/api/v1/inbox/<string:note_id>/read", query={}, summary="标记已读")
    def mark_read(self, request, note_id):
        n = self.store.notifications.find_one({"_id": note_id})
        if n is None or (n["recipient"] != self.recipient(request, n["recipient"])):
            raise NotFound(f"消息 {note_id} 不存在")
        if not n.get("read"):
            self.store.notifications.update_one({"_id": note_id}, {"$set": {
                "read": 1, "read_at": _iso(self.now())}})
        return {"id": note_id, "read": True, "unread": self.store.unread(n["recipient"])}

    @api("POST", "/api/v1/inbox/read-all", query={"recipient": str}, summary="全部标记已读")
    def mark_all_read(self, request):
        recipient = self.recipient(request, request.args.get("recipient"))
        marked = 0
        for n in self.store.notifications.find({"recipient": recipient, "read": 0}, {"_id": 1}):
            self.store.notifications.update_one({"_id": n["_id"]}, {"$set": {
                "read": 1, "read_at": _iso(self.now())}})
            marked += 1
        return {"recipient": recipient, "marked": marked, "unread": 0}

    # --- preferences ------------------------------------------------------------------
    @api("GET", "/api/v1/preferences/<string:recipient>", query={}, summary="通知偏好（渠道、免打扰、摘要）")
    def get_preferences(self, request, recipient):
        recipient = self.recipient(request, recipient)
        stored = self.store.prefs([recipient]).get(recipient) or {}
        effective = self.preferences_of([recipient])[recipient]
        return {"recipient": recipient,
                "stored": {k: v for k, v in stored.items() if k != "_id"},
                "effective": {"channels": effective.channels, "digest": effective.digest,
                              "quiet": {"start": effective.quiet[0].strftime("%H:%M"),
                                        "end": effective.quiet[1].strftime("%H:%M")}
                              if effective.quiet else None}}

    @api("PUT", "/api/v1/preferences/<string:recipient>", query={}, body=preferences_in,
         summary="设置通知偏好")
    def put_preferences(self, request, recipient):
        recipient = self.recipient(request, recipient)
        data = request.input
        self.store.preferences.update_one({"_id": recipient}, {"$set": data}, upsert=True)
        return self.get_preferences(request, recipient)

    # --- deliveries for the office -----------------------------------------------------
    @api("GET", "/api/v1/deliveries", roles=("admin", "reviewer"),
         query={"state": str, "channel": str, "recipient": str}, paged=1000,
         summary="投递记录")
    def deliveries(self, request):
        query = {k: v for k, v in request.query.items() if v}
        limit, after = page_params(request, default=100, maximum=1000)
        docs = find_page(self.store.deliveries, query, limit, after, {"body": 0})
        return dict(page([dict({k: v for k, v in d.items() if k != "_id"}, id=d["_id"])
                          for d in docs], limit),
                    count=self.store.deliveries.count_documents(query))

    @api("POST", "/api/v1/deliveries/<path:delivery_id>/retry", roles=("admin",), query={},
         summary="重试失败的投递")
    def retry(self, request, delivery_id):
        d = self.store.deliveries.find_one({"_id": delivery_id})
        if d is None:
            raise NotFound(f"投递 {delivery_id} 不存在")
        if d["state"] not in ("failed", "skipped"):
            raise Invalid({"state": ["只有失败或跳过的投递可以重试"]})
        self.store.settle(delivery_id, state="pending", attempts=0, due_at=_iso(self.now()))
        return {"id": delivery_id, "state": "pending"}

    @api("GET", "/api/v1/notify/rules", roles=("admin", "reviewer"), query={},
         summary="通知规则与 Webhook")
    def list_rules(self, request):
        return {"items": [r.__dict__ for r in self.rules()],
                "webhooks": [{"id": h["id"], "url": h["url"], "events": h.get("events")}
                             for h in self.settings.get("webhooks") or ()]}

    @rpc
    def unread(self, recipient):
        return self.store.unread(recipient)
