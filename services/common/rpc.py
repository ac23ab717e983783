"""Calling another service over nameko RPC without hanging on it.

nameko 2's RPC proxy waits for a reply forever; a request that needs another
service must instead fail fast with a 503 naming what is unavailable.
"""
import functools

import eventlet
from kombu.exceptions import OperationalError
from nameko.extensions import DependencyProvider
from nameko.exceptions import RemoteError, UnknownService

from .problems import Unavailable

DEFAULT_TIMEOUT = 10
# what the called service raises when its own database is away
_REMOTE_UNAVAILABLE = {"ServerSelectionTimeoutError", "AutoReconnect", "NetworkTimeout",
                       "ConnectionFailure", "Unavailable"}


def call(proxy, method, *args, timeout=None, what=None, **kwargs):
    """``proxy.method(*args, **kwargs)`` or a 503 problem after ``timeout`` s."""
    name = what or getattr(proxy, "target_service", "service")
    try:
        with eventlet.Timeout(float(timeout or DEFAULT_TIMEOUT)):
            return getattr(proxy, method)(*args, **kwargs)
    except eventlet.Timeout:
        raise Unavailable(f"{name}暂时无法响应，请稍后重试", unavailable=[name]) from None
    except UnknownService:  # no instance of it is running
        raise Unavailable(f"{name}未启动，请稍后重试", unavailable=[name]) from None
    except (OperationalError, OSError):  # the local broker is down
        raise Unavailable(f"消息总线不可用，{name}暂时无法访问", unavailable=["broker"]) from None
    except RemoteError as exc:
        if exc.exc_type in _REMOTE_UNAVAILABLE:
            raise Unavailable(f"{name}暂时无法访问其数据库，请稍后重试",
                              unavailable=[name]) from None
        raise


class NotYourCall(Exception):
    """An RPC method was called by a service it does not answer."""


class Caller(DependencyProvider):
    """The service that made the current RPC call, read from nameko's call-id
    stack (``<service>.<entrypoint>.<uuid>``, the caller's entry just before
    this worker's own)."""

    def get_dependency(self, worker_ctx):
        stack = list(worker_ctx.call_id_stack or ())
        return stack[-2].split(".", 1)[0] if len(stack) >= 2 else None


def answers_only(*services):
    """An RPC method that answers only ``services`` (e.g. contacts, which only
    notify needs at send time); anything else gets ``NotYourCall``. The call-id
    stack is what nameko callers send, so this keeps honest callers honest;
    the broker's per-service users decide who can publish such a call at all
    (docs/security.md)."""
    def wrap(method):
        @functools.wraps(method)
        def checked(self, *args, **kwargs):
            if self.caller not in services:
                raise NotYourCall(f"{method.__name__} answers {', '.join(services)} only, "
                                  f"not {self.caller}")
            return method(self, *args, **kwargs)
        checked.answers_only = services   # the broker users' topic permissions read it
        return checked
    return wrap
