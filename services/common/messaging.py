"""Event consumption that never loses a message.

nameko acks a message whose handler raised. ``event_handler`` here instead
republishes a failed message to ``<queue>.retry`` (per-message TTL, then back to
``<queue>``) with exponential backoff, and after ``EVENT_MAX_ATTEMPTS`` parks
it in the dead-letter queue ``zhzx.dlq`` with the error, the attempt count and
the original exchange, routing key and queue. The original is acked only after
the broker confirmed the republish; if that fails the message is requeued.
A body that is not a valid envelope goes to the dead-letter queue at once.

Two failures are not the message's fault and never count as attempts: an
inbox claim held by another worker (``ClaimHeld``: retried after 0.25, 0.5,
1 … s, at most half an inbox lease, logged at DEBUG) and the database being
unreachable (retried with the usual backoff, one WARNING line, no traceback).
"""
import logging
import traceback
import uuid
from datetime import datetime, timezone

from kombu import Queue
from nameko.amqp.publish import Publisher
from nameko.events import EventHandler

from .envelope import validation_errors
from .inbox import ClaimHeld, lease_seconds
from .mongo import UNAVAILABLE, unavailable_error
from .observability import EVENTS_CONSUMED, LINKED_REFUSED, redact
from .signing import Refused
from .names import (DLQ_NAME, H_ATTEMPTS, H_ERROR, H_EXCHANGE, H_FAILED_AT, H_HELD,  # noqa: F401
                    H_QUEUE, H_ROUTING_KEY, H_SERVICE)

log = logging.getLogger(__name__)


class _QuietClaims(logging.Filter):
    """nameko logs every handler exception; a held inbox claim is routine."""

    def filter(self, record):
        return not (record.exc_info and isinstance(record.exc_info[1], ClaimHeld))


logging.getLogger("nameko.containers").addFilter(_QuietClaims())

DLQ = Queue(DLQ_NAME, durable=True)   # the same declaration as dlq.DLQ


def retry_queue(queue_name):
    return Queue(f"{queue_name}.retry", durable=True, queue_arguments={
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue_name})


def backoff_ms(attempt, base_ms, cap_ms=300_000, factor=4):
    return int(min(cap_ms, base_ms * factor ** max(0, attempt - 1)))


class ReliableEventHandler(EventHandler):
    """``@event_handler(source_service, event_type)`` with retries and dead letters."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("expected_exceptions", UNAVAILABLE + (ClaimHeld, Refused))
        super().__init__(*args, **kwargs)

    def setup(self):
        super().setup()
        name = self.consumer_name()
        if name != f"{self.container.service_name}.{self.method_name}":
            # an explicit inbox key names the queue too: a renamed method keeps
            # its queue (and what is buffered in it)
            q = self.queue
            self.queue = Queue(f"evt-{self.source_service}-{self.event_type}--{name}",
                               exchange=q.exchange, routing_key=q.routing_key,
                               durable=q.durable, auto_delete=q.auto_delete,
                               exclusive=q.exclusive, queue_arguments=q.queue_arguments)
        self.setup_reliability()

    def consumer_name(self):
        """The handler's durable name: its inbox key (``@idempotent``) or
        ``<service>.<method>``."""
        method = getattr(self.container.service_cls, self.method_name, None)
        key = getattr(method, "inbox_key", None)
        service = self.container.service_name
        return key.format(service=service) if key else f"{service}.{self.method_name}"

    def setup_reliability(self):
        config = self.container.config
        self.max_attempts = int(config.get("EVENT_MAX_ATTEMPTS", 5))
        self.retry_base_ms = int(config.get("EVENT_RETRY_BASE_MS", 1000))
        self.held_cap_ms = lease_seconds(config) * 500   # half a lease
        self.publisher = Publisher(config["AMQP_URI"], use_confirms=True)

    def handle_message(self, body, message):
        errors = validation_errors(body)
        if errors:
            log.warning("invalid envelope dead-lettered",
                        extra={"entrypoint": self.method_name})
            self._settle(message, body, attempts=self._attempts(message),
                         error=f"invalid envelope: {errors}", dead=True)
            return
        try:
            self.admit(body, message.headers)
        except Refused as exc:
            self.refuse(message, body, exc)
            return
        message.zhzx_body = body
        super().handle_message(body, message)

    def admit(self, body, headers):
        """Raise ``Refused`` for a valid envelope this handler must not apply
        (linked handlers check its origin); local events are admitted."""

    def unpack_message_headers(self, message):
        data = super().unpack_message_headers(message)
        body = getattr(message, "zhzx_body", None) or {}
        data.setdefault("trace_id", body.get("trace_id"))
        return data

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        body = getattr(message, "zhzx_body", None) or message.payload
        event_type = body.get("type", "?") if isinstance(body, dict) else "?"
        service = self.container.service_name
        if exc_info is None:
            EVENTS_CONSUMED.labels(service, event_type, "ok").inc()
            self.queue_consumer.ack_message(message)
            return result, exc_info
        if isinstance(exc_info[1], Refused):   # never retried: it would be refused again
            self.refuse(message, body, exc_info[1])
            EVENTS_CONSUMED.labels(service, event_type, "refused").inc()
            return result, exc_info
        error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
        if isinstance(exc_info[1], ClaimHeld):  # not a failure: look again later
            held = self._count(message, H_HELD) + 1
            log.debug("inbox claim held elsewhere; retrying (%s)", held,
                      extra={"entrypoint": self.method_name})
            self._settle(message, body, self._attempts(message), error, dead=False,
                         delay_ms=backoff_ms(held, 250, self.held_cap_ms, factor=2),
                         extra={H_HELD: held})
            return result, exc_info
        if unavailable_error(exc_info[1]):  # the database is away: not the message's fault
            waited = self._count(message, H_HELD) + 1
            log.warning("database unavailable; event retried later",
                        extra={"event_type": event_type, "entrypoint": self.method_name})
            self._settle(message, body, self._attempts(message), error, dead=False,
                         delay_ms=backoff_ms(waited, self.retry_base_ms, 30_000, factor=2),
                         extra={H_HELD: waited})
            EVENTS_CONSUMED.labels(service, event_type, "retried").inc()
            return result, exc_info
        attempts = self._attempts(message) + 1
        dead = attempts >= self.max_attempts
        log.warning("event handler failed (attempt %s of %s): %s", attempts,
                    self.max_attempts, error,
                    extra={"event_type": event_type, "entrypoint": self.method_name,
                           "event_id": body.get("event_id") if isinstance(body, dict) else None})
        self._settle(message, body, attempts, error, dead)
        EVENTS_CONSUMED.labels(service, event_type,
                               "dead_lettered" if dead else "retried").inc()
        return result, exc_info

    def refuse(self, message, body, exc):
        """Dead-letter an event that is not applied (``Refused``), with the reason."""
        LINKED_REFUSED.labels(self.container.service_name, exc.reason).inc()
        log.warning("linked event refused: %s", exc.reason,
                    extra={"event_type": body.get("type"), "event_id": body.get("event_id"),
                           "entrypoint": self.method_name})
        self._settle(message, body, attempts=self._attempts(message), error=str(exc),
                     dead=True)

    @classmethod
    def _attempts(cls, message):
        return cls._count(message, H_ATTEMPTS)

    @staticmethod
    def _count(message, header):
        try:
            return int((message.headers or {}).get(header, 0))
        except (TypeError, ValueError):
            return 0

    def _settle(self, message, body, attempts, error, dead, delay_ms=None, extra=None):
        queue_name = self.queue.name
        headers = {k: v for k, v in (message.headers or {}).items()}
        headers.update(extra or {})
        headers[H_ATTEMPTS] = attempts
        headers[H_ERROR] = redact(error)[:2000]
        try:
            if dead:
                delivery = message.delivery_info or {}
                headers.update({
                    H_QUEUE: queue_name,
                    H_EXCHANGE: headers.get(H_EXCHANGE) or delivery.get("exchange", ""),
                    H_ROUTING_KEY: headers.get(H_ROUTING_KEY)
                    or delivery.get("routing_key", ""),
                    H_FAILED_AT: datetime.now(timezone.utc).isoformat(),
                    H_SERVICE: self.container.service_name,
                })
                self.publisher.publish(body, exchange="", routing_key=DLQ_NAME,
                                       declare=[DLQ], headers=headers,
                                       message_id=str(uuid.uuid4()))
            else:
                delivery = message.delivery_info or {}
                headers.setdefault(H_EXCHANGE, delivery.get("exchange", ""))
                headers.setdefault(H_ROUTING_KEY, delivery.get("routing_key", ""))
                retry = retry_queue(queue_name)
                self.publisher.publish(body, exchange="", routing_key=retry.name,
                                       declare=[retry], headers=headers,
                                       expiration=(delay_ms or backoff_ms(
                                       max(attempts, 1), self.retry_base_ms)) / 1000)
        except Exception:
            log.exception("could not park failed message; requeueing it")
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)


event_handler = ReliableEventHandler.decorator
