"""Errors that reach a caller, and their RFC 9457 problem+json form.

Domain code raises these (they carry no framework types); the HTTP layer turns
them into responses. Titles are shown to staff, so they are Chinese.
"""


class Problem(Exception):
    status = 500
    title = "服务器内部错误"
    type = "about:blank"

    def __init__(self, detail=None, *, errors=None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.extra = extra

    def to_dict(self, instance=None):
        body = {"type": self.type, "title": self.title, "status": self.status,
                "detail": self.detail}
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(Problem):
    status = 400
    title = "请求无法解析"


class Unauthorized(Problem):
    status = 401
    title = "未认证"


class Forbidden(Problem):
    status = 403
    title = "无权操作"


class NotFound(Problem):
    status = 404
    title = "资源不存在"


class Conflict(Problem):
    status = 409
    title = "状态冲突"


class ChangedMeanwhile(Conflict):
    """The document changed between reading it and saving the change (its
    ``seq`` moved on): the optimistic write matched nothing."""


class PayloadTooLarge(Problem):
    status = 413
    title = "请求体过大"


class UnsupportedMediaType(Problem):
    status = 415
    title = "不支持的内容类型"


class Invalid(Problem):
    """Field-level validation failure: ``errors`` maps field → [messages]."""
    status = 422
    title = "数据校验失败"

    def __init__(self, errors, detail="请求中有字段未通过校验"):
        super().__init__(detail, errors=flatten_errors(errors))


class Unavailable(Problem):
    status = 503
    title = "依赖服务暂不可用"
    retry_after = 5   # seconds, sent as Retry-After


def flatten_errors(errors, prefix=""):
    """marshmallow's nested error dicts → ``{"a.b.0": [msg, ...]}``."""
    flat = {}
    if isinstance(errors, (list, tuple)):
        msgs = [m for m in errors if isinstance(m, str)]
        if msgs:
            flat[prefix or "_schema"] = msgs
        for item in errors:
            if isinstance(item, dict):
                flat.update(flatten_errors(item, prefix))
        return flat
    if isinstance(errors, str):
        return {prefix or "_schema": [errors]}
    for key, value in (errors or {}).items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if name.endswith("._schema"):
            name = name[: -len("._schema")]
        flat.update(flatten_errors(value, name))
    return flat
