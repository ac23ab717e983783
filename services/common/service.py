"""What every service has: health, readiness, metrics, tracing, identity, clock."""
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import swagger_ui
from kombu import Connection
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from .commands import CommandPath
from .config import Identity
from . import openapi
from .http import api
from .lease import Duties
from .mongo import ping
from .observability import MetricsPort, Observed, current_trace_id
from .outbox import Change
from .problems import NotFound, Unavailable
from .required_secrets import RequiredSecrets
from .rpc import Caller


class PlatformService(CommandPath):
    """Base class of every service: subclasses add ``name`` and a ``db``."""

    config = Config()
    secrets = RequiredSecrets()   # first: no secret, no start
    observed = Observed()
    metrics_port = MetricsPort()  # METRICS_ADDRESS: /metrics for monitoring only
    caller = Caller()             # the service making the current RPC call
    duties = Duties()             # leases: timers run in one replica per platform

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

    @api("GET", "/healthz", public=True, query={}, summary="存活检查")
    def healthz(self, request):
        return {"status": "ok", "service": self.name}

    @api("GET", "/readyz", public=True, query={}, summary="就绪检查（数据库、消息总线、所调用的服务）")
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

    @api("GET", "/metrics", public=True, hidden=True)
    def metrics(self, request):
        if self.metrics_port:
            raise NotFound("指标由监控专用端口提供")
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @api("GET", "/openapi.json", public=True, hidden=True)
    def openapi_document(self, request):
        """This service's OpenAPI 3.1 document."""
        return service_document(type(self))

    @api("GET", "/docs", public=True, hidden=True)
    def api_docs(self, request):
        """Swagger UI on this service's document, served from the service itself."""
        return Response(SWAGGER_PAGE.replace("{title}", f"{self.name} API"),
                        mimetype="text/html")

    @api("GET", "/docs/static/<string:name>", public=True, hidden=True)
    def api_docs_static(self, request, name):
        if name not in SWAGGER_FILES:
            raise NotFound(f"{name} 不存在")
        path = Path(swagger_ui.__file__).parent / "static" / name
        return Response(path.read_bytes(), mimetype=SWAGGER_FILES[name],
                        headers={"Cache-Control": "max-age=86400"})


SWAGGER_FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
                 "favicon-32x32.png": "image/png"}
SWAGGER_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" href="/docs/static/favicon-32x32.png"></head>
<body><div id="ui"></div><script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", persistAuthorization: true});
</script></body></html>
"""
_DOCUMENTS = {}


def service_document(service_cls):
    """The OpenAPI document of ``service_cls`` (built once per class)."""
    if service_cls not in _DOCUMENTS:
        _DOCUMENTS[service_cls] = openapi.document(
            service_cls, title=f"智慧政协 {service_cls.name} API",
            description=(service_cls.__doc__ or "").strip().split("\n\n")[0])
    return _DOCUMENTS[service_cls]


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
