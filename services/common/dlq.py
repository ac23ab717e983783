"""Listing and replaying dead letters (``zhzx dlq list`` / ``zhzx dlq replay``).

Listing takes messages without acking them and gives them all back when the
channel closes, so the queue is unchanged. Replay publishes one message, with
its attempt count reset, to the queue it failed in (confirmed), then acks it.
"""
import json

from kombu import Connection, Queue

from .names import (DLQ_NAME, H_ATTEMPTS, H_ERROR, H_EXCHANGE, H_FAILED_AT, H_QUEUE,
                    H_ROUTING_KEY, H_SERVICE, UNROUTED_QUEUE)

DLQ = Queue(DLQ_NAME, durable=True)
KNOWN = {DLQ_NAME: DLQ, UNROUTED_QUEUE: Queue(UNROUTED_QUEUE, durable=True)}


def _connection(amqp_uri):
    return Connection(amqp_uri, connect_timeout=5, transport_options={"confirm_publish": True})


def depth(amqp_uri, queue=DLQ_NAME):
    with _connection(amqp_uri) as conn:
        channel = conn.channel()
        try:
            return KNOWN[queue](channel).queue_declare(passive=False).message_count
        finally:
            channel.close()


def _describe(message):
    headers = message.headers or {}
    body = message.payload if message.content_type == "application/json" else None
    if body is None:
        try:
            body = json.loads(message.body)
        except (TypeError, ValueError):
            body = None
    event = body if isinstance(body, dict) else {}
    return {
        "id": message.properties.get("message_id"),
        "event_id": event.get("event_id"),
        "type": event.get("type"),
        "queue": headers.get(H_QUEUE),
        "service": headers.get(H_SERVICE),
        "exchange": headers.get(H_EXCHANGE),
        "routing_key": headers.get(H_ROUTING_KEY),
        "attempts": headers.get(H_ATTEMPTS),
        "error": headers.get(H_ERROR),
        "failed_at": headers.get(H_FAILED_AT),
    }


def _drain(conn, queue, limit):
    bound = KNOWN[queue](conn.channel())
    bound.declare()
    taken = []
    for _ in range(limit):
        message = bound.get(no_ack=False)
        if message is None:
            break
        taken.append(message)
    return bound, taken


def list_dead_letters(amqp_uri, queue=DLQ_NAME, limit=1000):
    with _connection(amqp_uri) as conn:
        bound, taken = _drain(conn, queue, limit)
        try:
            return [_describe(m) for m in taken]
        finally:
            for m in taken:
                m.requeue()
            bound.channel.close()


def replay(amqp_uri, message_id, queue=DLQ_NAME, limit=100_000):
    """Send one dead letter back where it failed; returns its description."""
    with _connection(amqp_uri) as conn:
        bound, taken = _drain(conn, queue, limit)
        found = None
        try:
            for m in taken:
                if m.properties.get("message_id") == message_id:
                    found = m
                    break
            if found is None:
                return None
            info = _describe(found)
            headers = dict(found.headers or {})
            headers[H_ATTEMPTS] = 0
            for key in (H_ERROR, H_FAILED_AT):
                headers.pop(key, None)
            if queue == UNROUTED_QUEUE:
                exchange, routing_key = headers.get(H_EXCHANGE, ""), headers.get(H_ROUTING_KEY, "")
            else:
                exchange, routing_key = "", headers.get(H_QUEUE)
            producer = conn.Producer()
            producer.publish(found.body, exchange=exchange, routing_key=routing_key,
                             headers=headers, content_type=found.content_type,
                             content_encoding=found.content_encoding, delivery_mode=2,
                             message_id=found.properties.get("message_id"),
                             mandatory=True)
            found.ack()
            return info
        finally:
            for m in taken:
                if m is not found:
                    m.requeue()
            bound.channel.close()
