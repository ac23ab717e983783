"""The OpenAPI 3.1 document of a service, generated from its ``@api`` entrypoints.

Each entrypoint declares what it takes and gives (``body``, ``query``,
``response``, ``paged``, ``status``) and the kernel enforces the same
declarations (a body is loaded with its schema before the worker runs, an
undeclared query parameter is a 422), so the document describes what the
service does. Schemas are converted from the marshmallow schemas by apispec's
marshmallow plugin (the converter of the event catalogue too). Every service
serves its document at ``/openapi.json`` and Swagger UI at ``/docs`` (offline:
the static files of the ``swagger-ui-py`` package, Swagger UI 5, which renders
OpenAPI 3.1); ``python -m services.openapi`` writes them to ``docs/openapi/``.
"""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

ROLE_TEXT = {"admin": "政协办公室（admin）", "reviewer": "审查人员（reviewer）"}
PROBLEMS = {400: "请求体不是合法的 JSON", 401: "缺少或无效的令牌", 403: "当前角色无权执行",
            404: "资源不存在", 409: "状态或版本冲突（seq）", 413: "请求体过大",
            415: "请求体须为 application/json", 422: "输入有误（errors 按字段列出）",
            503: "依赖暂时不可用（unavailable 列出；见 Retry-After）"}
PROBLEM = {
    "type": "object", "required": ["type", "title", "status"],
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "string"}},
            "description": "field → messages (422)"},
        "unavailable": {"type": "array", "items": {"type": "string"}},
        "current_state": {"type": ["string", "null"]},
        "current_seq": {"type": ["integer", "null"]},
        "allowed_actions": {"type": "array", "items": {"type": "string"}}},
    "additionalProperties": True}


def path_of(url):
    """``/api/v1/x/<string:x_id>`` → ``/api/v1/x/{x_id}``."""
    return re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", url)


def _schema_ref(spec, schema, names):
    """A $ref to ``schema`` (a Schema class or instance), registering it once."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = names.get(cls)
    if name is None:
        name = cls.__name__.removesuffix("Schema")
        while name in names.values():
            name += "_"
        names[cls] = name
        spec.components.schema(name, schema=cls)
    return {"$ref": f"#/components/schemas/{name}"}


def tag_of(url):
    parts = url.split("/")
    return parts[3] if url.startswith("/api/v1/") and len(parts) > 3 else "platform"


def _query_parameters(entry):
    params = []
    for name, kind in (entry.query or {}).items():
        params.append({"name": name, "in": "query", "required": False,
                       "schema": {"type": "integer"} if kind is int else {"type": "string"}})
    if entry.paged:
        params += [{"name": "limit", "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": entry.paged}},
                   {"name": "cursor", "in": "query", "required": False,
                    "schema": {"type": "string"}, "description": "上一页的 next_cursor"}]
    return params


def _operation(spec, names, entry, action=None, action_schema=None):
    path_params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                   for n in re.findall(r"{([a-zA-Z_]+)}", path_of(entry.url)) if n != "action"
                   or action is None]
    doc = (entry.doc or "").strip()
    summary = entry.summary or (doc.splitlines()[0] if doc else entry.method_name)
    op = {"operationId": entry.method_name + (f"_{action}" if action else ""),
          "summary": f"{summary}（{action}）" if action else summary,
          "tags": [tag_of(entry.url)],
          "parameters": path_params + _query_parameters(entry)}
    if doc:
        op["description"] = doc
    if entry.public:
        op["security"] = []
    else:
        roles = entry.roles or ()
        op["x-roles"] = list(roles)
        who = "、".join(ROLE_TEXT.get(r, r) for r in roles) if roles else "本平台任一有效令牌"
        op["description"] = (op.get("description", "") + f"\n\n角色：{who}").strip()
    body = action_schema if action is not None else entry.body
    if entry.upload:
        op["requestBody"] = {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    elif body is not None:
        op["requestBody"] = {"required": False, "content": {
            "application/json": {"schema": _schema_ref(spec, body, names)}}}
    if entry.response is not None:
        item = _schema_ref(spec, entry.response, names)
        schema = {"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array", "items": item},
            "next_cursor": {"type": ["string", "null"]}}} if entry.paged else item
    else:
        schema = {"type": "object"}
    content = entry.content_type or "application/json"
    ok = {"description": "成功", "content": {content: {"schema": schema}}} \
        if content == "application/json" else {
            "description": "成功", "content": {content: {"schema": {
                "type": "string", "format": "binary"}}}}
    op["responses"] = {str(entry.status): ok}
    codes = [400, 413, 415, 422] if body is not None or entry.upload else [422]
    if not entry.public:
        codes += [401, 403, 503]
    codes += list(getattr(entry, "statuses", ()))
    if path_params or action:
        codes += [404]
    if entry.method in ("POST", "PUT", "PATCH", "DELETE"):
        codes += [409]   # a stale seq, a state that does not allow it, an id taken
    for code in sorted(set(codes)):
        op["responses"][str(code)] = {"description": PROBLEMS[code], "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    return op


def entrypoints(service_cls):
    """The service's ``Api`` entrypoints, in path order."""
    from .http import Api
    found = []
    for name in dir(service_cls):
        method = getattr(service_cls, name, None)
        for entry in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entry, Api):
                entry.method_name = name
                entry.doc = method.__doc__
                found.append(entry)
    return sorted(found, key=lambda e: (e.url, e.method))


def routes(service_cls):
    """``(method, path)`` of every route the service serves, hidden ones
    included, one per action of an action endpoint."""
    out = []
    for entry in entrypoints(service_cls):
        url = path_of(entry.url)
        actions = sorted(entry.body) if isinstance(entry.body, dict) else [None]
        out += [(entry.method, url.replace("{action}", a) if a else url) for a in actions]
    return out


def document(service_cls, title, version="1.0.0", description=""):
    spec = APISpec(title=title, version=version, openapi_version="3.1.0",
                   plugins=[MarshmallowPlugin()], info={"description": description},
                   servers=[{"url": "/"}])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"})
    spec.components.schema("Problem", PROBLEM)
    names = {}
    paths = {}
    for entry in entrypoints(service_cls):
        if entry.hidden:
            continue
        url = path_of(entry.url)
        if isinstance(entry.body, dict):   # one operation per action
            for action, schema in sorted(entry.body.items()):
                paths.setdefault(url.replace("{action}", action), {})[entry.method.lower()] = \
                    _operation(spec, names, entry, action, schema)
        else:
            paths.setdefault(url, {})[entry.method.lower()] = _operation(spec, names, entry)
    for url, ops in sorted(paths.items()):
        spec.path(path=url, operations=ops)
    out = spec.to_dict()
    out["security"] = [{"bearer": []}]
    return out


def is_schema(value):
    return isinstance(value, Schema) or (isinstance(value, type) and issubclass(value, Schema))
