"""Each service's own broker user, with permissions limited to what it uses.

A service S declares, binds and consumes its own queues only (``rpc-S``, its
RPC reply queues ``rpc.reply-S-…``, its event and link handlers' queues
``evt-…--S.…`` / ``link-…--S.…`` and their ``.retry`` queues), publishes to
its own ``S.events``, to ``nameko-rpc``, to the link exchanges and (for retry
and dead-letter queues) to the default exchange, and reads the exchanges it
binds from. On ``nameko-rpc`` a topic permission keeps it from publishing the
calls that answer other callers only (``answers_only``: contacts, which only
notify may ask for), so the broker refuses such a call before any service
sees it.

The permissions are data (``permissions``, ``topic_permissions``): ``zhzx up``
applies them through the management API, and the same values describe the
Kubernetes ``User``/``Permission`` resources.
"""
import re
from urllib.parse import quote

from .names import DLQ_NAME, DOWN, UNROUTED_QUEUE, UP

RPC_EXCHANGE = "nameko-rpc"
VHOST = "%2F"


def user_name(service):
    return f"svc-{service}"


def _alt(*names):
    return "|".join(re.escape(n) for n in names)


def permissions(service):
    """``{configure, write, read}`` regexes of ``service``'s user."""
    s = re.escape(service)
    own_queues = rf"rpc-{s}|rpc\.reply-{s}-.+|(evt|link)-.+--{s}\..+"
    return {
        "configure": rf"^({own_queues}|[a-z_]+\.events|{_alt(RPC_EXCHANGE, UP, DOWN)}"
                     rf"|{_alt(DLQ_NAME, UNROUTED_QUEUE)})$",
        "write": rf"^({own_queues}|{s}\.events|{_alt(RPC_EXCHANGE, UP, DOWN, 'amq.default')})$",
        "read": rf"^({own_queues}|[a-z_]+\.events|{_alt(RPC_EXCHANGE, UP, DOWN)})$",
    }


def link_permissions():
    """``{configure, write, read}`` of the user another platform's broker
    connects as to federate this broker's link exchange: the federation
    plugin's upstream exchange and queue (``federation: …``), and reading
    ``zhzx.up`` / ``zhzx.down``; nothing else."""
    return {"configure": r"^federation: .+$",
            "write": r"^federation: .+$",
            "read": rf"^(federation: .+|{_alt(UP, DOWN)})$"}


def topic_permissions(service, restricted):
    """``[{exchange, write, read}]`` for ``service``: on ``nameko-rpc`` it may
    publish every routing key but the restricted calls
    (``{"members.get_contact": ("notify",), …}``) of which it is not a caller."""
    denied = sorted(key for key, callers in restricted.items() if service not in callers)
    if not denied:
        return []
    return [{"exchange": RPC_EXCHANGE, "write": rf"^(?!({_alt(*denied)})$)", "read": ".*"}]


def ensure(broker, service, password, restricted):
    """Create or update ``service``'s user on ``broker`` (a
    ``federation.BrokerRef``); idempotent."""
    user = quote(user_name(service), safe="")
    broker.call("PUT", f"users/{user}", {"password": password, "tags": ""})
    broker.call("PUT", f"permissions/{VHOST}/{user}", permissions(service))
    topics = topic_permissions(service, restricted)
    if not topics:
        broker.call("DELETE", f"topic-permissions/{VHOST}/{user}", ok=(204, 404))
    for topic in topics:
        broker.call("PUT", f"topic-permissions/{VHOST}/{user}", topic)
