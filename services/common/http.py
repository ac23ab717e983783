"""HTTP entrypoints: JSON in and out, problem+json errors, bearer auth, cursors."""
import base64
import binascii
import json
import logging
from datetime import datetime
from functools import partial

from eventlet.event import Event
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from . import problems
from .auth import authenticate, require_roles
from .mongo import UNAVAILABLE, Mongo, reachable, unavailable_error
from .observability import ENTRYPOINT_CALLS, clean_trace_id, new_trace_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MAX_BODY = 16 * 1024 * 1024


def json_response(body, status=200, headers=None):
    return Response(json.dumps(body, ensure_ascii=False, default=str), status=status,
                    headers=headers, mimetype="application/json")


def problem_response(problem, instance=None):
    response = Response(json.dumps(problem.to_dict(instance), ensure_ascii=False),
                        status=problem.status, mimetype=PROBLEM_JSON)
    if getattr(problem, "retry_after", None):
        response.headers["Retry-After"] = str(problem.retry_after)
    return response


DATABASE_DOWN = problems.Unavailable("数据库暂时无法访问，请稍后重试", unavailable=["database"])


_HTTP_TITLES = {404: "资源不存在", 405: "不支持的请求方法"}


class _ProblemWsgiApp(WsgiApp):
    """nameko's WSGI app, with unknown paths and methods as problem+json."""

    def __call__(self, environ, start_response):
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except HTTPException as exc:
            problem = problems.Problem(exc.description)
            problem.status = exc.code
            problem.title = _HTTP_TITLES.get(exc.code, exc.name)
            response = problem_response(problem, Request(environ).path)
            if exc.code == 405 and getattr(exc, "valid_methods", None):
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            return response(environ, start_response)
        request = Request(environ, shallow=True)
        request.path_values = values
        return provider.handle_request(request)(environ, start_response)


class ProblemWebServer(WebServer):
    def get_wsgi_app(self):
        return _ProblemWsgiApp(self)


class Api(HttpRequestHandler):
    """``@api("POST", "/api/v1/x", roles=("admin",))``.

    Authenticates before any worker runs (401 without a valid token, 403 for
    another platform's token or a missing role), hands the principal to the
    method as ``request.principal``, serialises dict/list results as JSON and
    every error as problem+json. Unexpected errors are logged with the trace
    id and answered with a generic 500 that reveals nothing.
    """

    server = ProblemWebServer()

    def __init__(self, method, url, roles=None, public=False, *, body=None, query=None,
                 response=None, status=200, paged=None, summary=None, content_type=None,
                 hidden=False, parse_body=True, upload=False, statuses=(), **kwargs):
        """``body``: the request body's schema (or ``{action: schema}`` for
        ``.../actions/<action>``), loaded before the worker runs into
        ``request.input``; ``query``: ``{name: str | int}``, the only query
        parameters accepted (parsed into ``request.query``); ``paged``: the
        largest ``limit`` of a paged list; ``response``: the schema of the
        answer (of each item when paged). They make the OpenAPI document
        (openapi.py), so it says what the service does. ``parse_body=False``:
        the handler loads ``body`` itself (to merge more checks into one 422);
        ``upload``: the body is a file (multipart ``file`` or the raw bytes);
        ``statuses``: more problem statuses it answers with (a public route
        that authenticates another way: 401)."""
        self.roles = tuple(roles or ())
        self.public = public
        self.body, self.query, self.response = body, query, response
        self.status, self.paged, self.summary = status, paged, summary
        self.content_type, self.hidden = content_type, hidden
        self.parse_body, self.upload = parse_body, upload
        self.statuses = tuple(statuses)
        # answered as 4xx/503, so logged as a WARNING line, not an ERROR
        kwargs.setdefault("expected_exceptions", (problems.Problem,) + UNAVAILABLE)
        super().__init__(method, url, **kwargs)

    def database_down(self):
        """True when the service's database is known to be unreachable."""
        return any(isinstance(dep, Mongo) and hasattr(dep, "client")
                   and not reachable(dep.client) for dep in self.container.dependencies)

    def handle_request(self, request):
        request.shallow = False
        trace_id = clean_trace_id(request.headers.get("X-Trace-Id")) or new_trace_id()
        config = self.container.config
        try:
            if request.content_length and request.content_length > MAX_BODY:
                raise problems.PayloadTooLarge(f"请求体不能超过 {MAX_BODY} 字节")
            request.principal = None
            if not self.public:
                request.principal = authenticate(
                    request.headers.get("Authorization"),
                    secret=config["JWT_SECRET"], org=str(config["ORG_CODE"]))
                require_roles(request.principal, self.roles)
                if self.database_down():  # fail fast, not after the selection timeout
                    raise DATABASE_DOWN
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            self.declared_input(request, kwargs)
            event = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data={"trace_id": trace_id},
                handle_result=partial(self.handle_result, event))
            response = self.response_from_result(event.wait())
        except problems.Problem as exc:
            if exc.status in (401, 403):
                ENTRYPOINT_CALLS.labels(self.container.service_name,
                                        self.method_name, "rejected").inc()
            response = problem_response(exc, request.path)
        except Exception as exc:
            if unavailable_error(exc):
                log.warning("database unavailable in %s: %s", self.method_name,
                            type(exc).__name__, extra={"trace_id": trace_id,
                                                       "entrypoint": self.method_name})
                response = problem_response(DATABASE_DOWN, request.path)
            else:
                response = self.unexpected(request, trace_id)
        response.headers["X-Trace-Id"] = trace_id
        return response

    def declared_input(self, request, path_values):
        """The declared query parameters and body, checked before any worker runs."""
        if self.query is not None:
            allowed = dict(self.query)
            if self.paged:
                allowed.update(limit=int, cursor=str)
            errors = {k: ["不支持的查询参数"] for k in request.args if k not in allowed}
            errors.update({k: [INT_MESSAGE] for k, kind in allowed.items()
                           if kind is int and k in request.args
                           and not small_int(request.args[k])})
            if errors:
                raise problems.Invalid(errors)
            request.query = {k: (int(v) if allowed[k] is int else v)
                             for k, v in request.args.items()
                             if k in allowed and k not in ("limit", "cursor")}
        schema = self.body
        if isinstance(schema, dict):
            action = path_values.get("action")
            schema = schema.get(action)
            if schema is None:
                raise problems.NotFound(f"未知的操作 {action}",
                                        allowed_actions=sorted(self.body))
        if schema is not None and self.parse_body:
            request.input = schema.load_or_raise(json_body(request))

    def unexpected(self, request, trace_id):
        log.exception("unhandled error in %s", self.method_name,
                      extra={"trace_id": trace_id, "entrypoint": self.method_name})
        return problem_response(problems.Problem(f"请求处理失败，追踪号 {trace_id}"),
                                request.path)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        status, headers = 200, None
        if isinstance(result, tuple):
            if len(result) == 3:
                status, headers, result = result
            else:
                status, result = result
        if result is None:
            return Response(status=status if status != 200 else 204, headers=headers)
        return json_response(result, status, headers)


api = Api.decorator


def json_body(request):
    """The request's JSON object, or a 4xx problem saying why not. A request
    without a body (an action without fields, ``curl -X POST``) is ``{}``,
    whatever content type the client or server assumed for nothing."""
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    ctype = (request.mimetype or "").lower()
    if ctype != "application/json":
        raise problems.UnsupportedMediaType("请求体须为 application/json")
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        raise problems.BadRequest("请求体不是合法的 JSON") from None
    if not isinstance(body, dict):
        raise problems.Invalid({"_schema": ["请求体必须是 JSON 对象"]})
    return body


def encode_cursor(last_key):
    raw = json.dumps({"after": last_key}, ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor):
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)["after"]
        if not isinstance(value, str):
            raise ValueError
        return value
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise problems.Invalid({"cursor": ["分页游标无效"]}) from None


def page_params(request, default=50, maximum=200):
    """``limit`` and decoded ``cursor`` from the query string."""
    raw = request.args.get("limit", str(default))
    if not small_int(raw) or not 1 <= int(raw) <= maximum:
        raise problems.Invalid({"limit": [f"应为 1 到 {maximum} 之间的整数"]})
    cursor = request.args.get("cursor")
    return int(raw), (decode_cursor(cursor) if cursor else None)


def page(items, limit, key="id"):
    """A page of at most ``limit`` items from ``limit + 1`` fetched."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items,
            "next_cursor": encode_cursor(items[-1][key]) if more and items else None}


def moment_param(request, name, default):
    """``?now=YYYY-MM-DDTHH:MM`` (or a date) to run a scan as of another moment
    (checks and drills); ``default`` when absent; a 422 when unreadable."""
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise problems.Invalid({name: ["时间格式应为 YYYY-MM-DD 或 YYYY-MM-DDTHH:MM"]}) from None


INT_MESSAGE = "必须是 0 到 2147483647 之间的整数"


def small_int(raw):
    """A query parameter that is a whole number the database can hold."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= 2**31 - 1


def query_args(request, allowed, ints=("year",)):
    """The query parameters of ``allowed`` (``ints`` as integers); others and
    malformed integers are a 422 with field messages."""
    errors = {k: ["不支持的查询参数"] for k in request.args
              if k not in tuple(allowed) + ("limit", "cursor")}
    errors.update({k: [INT_MESSAGE] for k in ints
                   if k in request.args and not small_int(request.args[k])})
    if errors:
        raise problems.Invalid(errors)
    return {k: (int(v) if k in ints else v) for k, v in request.args.items() if k in allowed}
