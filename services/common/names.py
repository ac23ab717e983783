"""Names on the wire: exchanges, queues, message headers and outbox keys.

The one module every other kernel module may import for a name; it imports
nothing of the project, so the kernel has no import cycle.
"""
from kombu import Exchange

# Linked events between platforms (三级联动): routing key ``<target org>.<type>``.
UP, DOWN = "zhzx.up", "zhzx.down"
LINK_EXCHANGES = (UP, DOWN)


def local_exchange_name(service):
    """Each service publishes its own events on ``<service>.events`` (nameko's name)."""
    return f"{service}.events"


def link_exchange(name):
    if name not in LINK_EXCHANGES:
        raise ValueError(f"not a link exchange: {name}")
    return Exchange(name, type="topic", durable=True)


def link_routing_key(org, event_type):
    return f"{org}.{event_type}"


# Queues every platform has.
DLQ_NAME = "zhzx.dlq"               # dead letters, with the reason
UNROUTED_QUEUE = "zhzx.unrouted"    # events no queue was bound to receive

# Outbox keys inside an aggregate document.
OUTBOX = "_outbox"
PENDING = "_pending"   # 0: nothing to send; PENDING_NOW; LINK_WAITING
PENDING_NOW = 1        # events to publish
LINK_WAITING = 2       # only linked events whose link has no route yet
LINK = "link"   # key in an outbox entry: {"to": org, "via": exchange}; never published

# Headers of retried and dead-lettered messages.
H_ATTEMPTS = "x-zhzx-attempts"
H_ERROR = "x-zhzx-error"
H_QUEUE = "x-zhzx-queue"
H_EXCHANGE = "x-zhzx-exchange"
H_ROUTING_KEY = "x-zhzx-routing-key"
H_FAILED_AT = "x-zhzx-failed-at"
H_SERVICE = "x-zhzx-service"
H_HELD = "x-zhzx-held"   # times the inbox claim was found held by another worker
