"""Publishing a batch of messages with their publisher confirms awaited together.

RabbitMQ's publisher confirms on one long-lived channel: the messages of a
batch are written without waiting, then the broker's acks, nacks and returns
are read until every message of the batch is settled or the confirm timeout
passes. One round trip per batch instead of one per message.

Each message comes back with its outcome:

- ``CONFIRMED``: the broker took it and routed it to at least one queue;
- ``RETURNED``: the broker took it but no queue was bound to receive it
  (``mandatory``; RabbitMQ sends the return before the ack);
- ``NACKED``: the broker refused it (an internal error, or a queue full with
  ``x-overflow: reject-publish``);
- ``UNCONFIRMED``: no answer came (connection lost, confirm timeout).

Only a ``CONFIRMED`` or ``RETURNED`` message is the broker's; the caller
publishes the rest again later (at least once). When the batch did not settle
in full, ``publish`` raises ``NotConfirmed`` carrying every outcome, and a
lost or timed-out connection is dropped, so the next batch starts on a new
channel whose delivery tags cannot be confused with the old one's.

Written on kombu and py-amqp (both already under nameko): py-amqp's own
confirm mode waits for each message in turn, which is what this replaces.
"""
import time
from collections import namedtuple

from kombu import Connection, Producer

CONFIRMED, RETURNED, NACKED, UNCONFIRMED = "confirmed", "returned", "nacked", "unconfirmed"
SETTLED = (CONFIRMED, RETURNED)

Message = namedtuple("Message", "body exchange routing_key headers message_id timestamp",
                     defaults=(None,))


class NotConfirmed(Exception):
    """Part of a batch was not confirmed; ``outcomes`` says which."""

    def __init__(self, outcomes, cause=None):
        counts = {o: outcomes.count(o) for o in (NACKED, UNCONFIRMED) if o in outcomes}
        super().__init__(f"not confirmed: {counts}" + (f" ({type(cause).__name__})"
                                                       if cause else ""))
        self.outcomes, self.cause = outcomes, cause


class BatchPublisher:
    """Publishes persistent JSON messages, ``mandatory``, in confirmed batches."""

    def __init__(self, amqp_uri, ssl=None, confirm_timeout=30.0, connect=Connection):
        self.amqp_uri, self.ssl = amqp_uri, ssl
        self.confirm_timeout = float(confirm_timeout)
        self._connect = connect
        self._conn = None

    def _open(self):
        conn = self._connect(self.amqp_uri, ssl=self.ssl, heartbeat=0)
        try:
            conn.ensure_connection(max_retries=1)
            channel = conn.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
        except Exception:
            conn.release()
            raise
        self._conn, self._producer = conn, Producer(channel, serializer="json",
                                                    auto_declare=False)
        self._tag = 0            # the channel's delivery tags count from 1
        self._waiting = {}       # delivery tag -> index in the batch
        self._returned = set()   # message ids returned as unroutable

    def close(self):
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.release()
            except Exception:  # noqa: BLE001  already gone
                pass

    def publish(self, messages):
        """The outcome of each message, in order; raises ``NotConfirmed``
        (carrying them) unless every one is confirmed or returned."""
        outcomes = [UNCONFIRMED] * len(messages)
        if not messages:
            return outcomes
        self._outcomes, self._messages = outcomes, messages
        try:
            if self._conn is None:
                self._open()
            self._returned = set()
            for index, message in enumerate(messages):
                extra = {} if message.timestamp is None else {"timestamp": message.timestamp}
                self._producer.publish(
                    message.body, exchange=message.exchange, routing_key=message.routing_key,
                    headers=message.headers, message_id=message.message_id,
                    delivery_mode=2, mandatory=True, declare=[message.exchange], **extra)
                self._tag += 1
                self._waiting[self._tag] = index
            deadline = time.monotonic() + self.confirm_timeout
            while self._waiting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no confirm within {self.confirm_timeout}s")
                self._conn.drain_events(timeout=remaining)
        except Exception as exc:  # connection or channel trouble: a new channel next time
            self.close()
            raise NotConfirmed(outcomes, exc) from exc
        finally:
            self._waiting = {}
        if any(o not in SETTLED for o in outcomes):
            raise NotConfirmed(outcomes)
        return outcomes

    def _settle(self, tag, multiple, outcome):
        tags = [t for t in self._waiting if t <= tag] if multiple else [tag]
        for t in tags:
            index = self._waiting.pop(t, None)
            if index is None:
                continue
            if outcome == CONFIRMED and self._messages[index].message_id in self._returned:
                outcome_here = RETURNED
            else:
                outcome_here = outcome
            self._outcomes[index] = outcome_here

    def _on_ack(self, tag, multiple):
        self._settle(tag, multiple, CONFIRMED)

    def _on_nack(self, tag, multiple):
        self._settle(tag, multiple, NACKED)

    def _on_return(self, exc, exchange, routing_key, message):
        self._returned.add(message.properties.get("message_id"))
