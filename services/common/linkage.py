"""三级联动: events addressed to another platform, over RabbitMQ federation.

Linked events travel on two topic exchanges, ``zhzx.up`` (county → city) and
``zhzx.down`` (city → county), with routing key ``<target org>.<type>``. The
city broker federates ``zhzx.up`` from each county broker and each county
broker federates ``zhzx.down`` from the city (``zhzx link``), so nothing here
talks to another platform directly.

Sending: ``Change.linked(...)`` makes an event that the outbox relay publishes
to the link exchange instead of the service's own; while the link has no route
yet (never set up) the event stays pending in the outbox, in order, and is
counted as link backlog. Receiving: ``@linked_handler("zhzx.down", "task.*")``
consumes events addressed to this platform (its ``ORG_CODE``), with the same
retries and dead letters as local handlers; effects go through the inbox.
A linked event keeps its ``origin``; a platform forwards further only by an
explicit decision that emits a new event.
"""
import time
from datetime import datetime, timezone

from kombu import Queue
from nameko.messaging import Consumer

from .config import Identity
from .inbox import done_ttl_seconds
from .messaging import ReliableEventHandler
from .observability import LINK_LAG, LINK_LAST
from .signing import TrustStore, Verifier

from .names import DOWN, UP, link_exchange, link_routing_key  # noqa: F401 (UP, DOWN used by services)


def direction(own_level, target_level):
    """``zhzx.up`` towards a higher level, ``zhzx.down`` towards a lower one."""
    order = ("county", "city", "province")
    return UP if order.index(target_level) > order.index(own_level) else DOWN


class LinkedEventHandler(ReliableEventHandler):
    """Handles linked events addressed to this platform on ``zhzx.up`` (a city
    receiving from its counties) or ``zhzx.down`` (a county from its city)."""

    def setup(self):
        self.setup_reliability()
        config = self.container.config
        exchange = link_exchange(self.source_service)
        org = str(config["ORG_CODE"])
        self.queue = Queue(
            f"link-{self.source_service}-{self.event_type}--{self.consumer_name()}",
            exchange=exchange, routing_key=link_routing_key(org, self.event_type),
            durable=True)
        Consumer.setup(self)
        self.verifier = Verifier(Identity.from_config(config),
                                 TrustStore(config.get("LINK_TRUST_FILE")),
                                 replay_days=done_ttl_seconds(config) / 86400)

    def handle_message(self, body, message):
        try:
            occurred = datetime.fromisoformat(str(body["occurred_at"]).replace("Z", "+00:00"))
            LINK_LAG.labels(self.container.service_name, self.source_service).set(
                (datetime.now(timezone.utc) - occurred).total_seconds())
        except (KeyError, TypeError, ValueError):
            pass  # the envelope check dead-letters it
        super().handle_message(body, message)

    def admit(self, body, headers):
        self.verifier.check(self.source_service, body, headers)
        # labelled by origin only once verified: a forged one adds no series
        LINK_LAST.labels(self.container.service_name, self.source_service,
                         str(body["origin"])).set(time.time())


linked_handler = LinkedEventHandler.decorator
