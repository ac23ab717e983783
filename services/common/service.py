"""What every service has: health, readiness, metrics, tracing, identity, clock."""
from datetime import datetime
from zoneinfo import ZoneInfo

from kombu import Connection
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from .config import Identity
from .http import api
from .mongo import ping
from .observability import Observed, current_trace_id
from .outbox import Change
from .problems import Unavailable


class PlatformService:
    """Base class of every service: subclasses add ``name`` and a ``db``."""

    config = Config()
    observed = Observed()

    @property
    def identity(self):
        return Identity.from_config(self.config)

    def now(self):
        """The platform's wall clock (naive, in its ``TIMEZONE``)."""
        zone = ZoneInfo(self.config.get("TIMEZONE", "Asia/Shanghai"))
        return datetime.now(zone).replace(tzinfo=None, microsecond=0)

    def today(self):
        return self.now().date()

    def change(self, request=None, actor=None):
        """Who is making this change, for the event envelope."""
        if actor is None and request is not None and request.principal is not None:
            actor = request.principal.sub
        return Change(origin=self.identity.org_code, actor=actor,
                      trace_id=current_trace_id())

    @api("GET", "/healthz", public=True)
    def healthz(self, request):
        return {"status": "ok", "service": self.name}

    @api("GET", "/readyz", public=True)
    def readyz(self, request):
        """Ready when its database and broker answer and every service it
        calls over RPC has a consumer on its queue; a 503 names what is not."""
        failed = []
        try:
            ping(self.db)
        except Exception:
            failed.append("database")
        try:
            with Connection(self.config["AMQP_URI"], connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                failed += [f"service:{name}" for name in self.rpc_targets()
                           if not rpc_consumers(conn, name)]
        except Exception:
            failed.append("broker")
        if failed:
            raise Unavailable("未就绪：" + "、".join(failed), unavailable=failed)
        body = {"status": "ready", "service": self.name,
                "org": self.identity.org_code, "level": self.identity.org_level}
        warnings = self.readiness_warnings()
        if warnings:
            body["warnings"] = warnings
        return body

    def readiness_warnings(self):
        """What an operator should fix although the service works (shown by
        /readyz, which still answers 200)."""
        return []

    @classmethod
    def rpc_targets(cls):
        """The services this one calls over RPC."""
        return sorted({value.target_service for value in vars_of(cls)
                       if isinstance(value, RpcProxy)})

    @api("GET", "/metrics", public=True)
    def metrics(self, request):
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


def vars_of(cls):
    seen = {}
    for klass in reversed(cls.__mro__):
        seen.update(vars(klass))
    return list(seen.values())


def rpc_consumers(conn, service):
    """How many workers consume ``service``'s RPC queue (0 if it has none)."""
    channel = conn.channel()
    try:
        return channel.queue_declare(queue=f"rpc-{service}", passive=True).consumer_count
    except Exception:   # no such queue: the service never ran on this broker
        return 0
    finally:
        try:
            channel.close()
        except Exception:
            pass
