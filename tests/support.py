"""Test helpers: configs, running containers, probing the broker, waiting."""
import json
import secrets
import time
import uuid
from datetime import date, timedelta
from dataclasses import dataclass
from pathlib import Path

import requests
from kombu import Connection, Exchange, Queue

from deploy.local import (PLATFORMS, PORT_KEYS, SERVICES, check_shift, free_port,
                          port_open)
from services.common.auth import issue_token
from services.common.config import load_config
from services.common.signing import new_private_key, public_key, write_trust

ROOT = Path(__file__).resolve().parent.parent
# made for each run: no committed secret opens anything
JWT_SECRET = secrets.token_hex(24)
PERSON_SECRET = secrets.token_hex(24)
ORG = "140428"


@dataclass
class Infra:
    broker: object
    mongo: object
    base: Path

    @property
    def amqp_uri(self):
        return self.broker.amqp_uri

    @property
    def mongo_uri(self):
        return self.mongo.uri


def create_vhost(broker, name):
    auth = ("guest", "guest")
    requests.put(f"{broker.mgmt_url}/api/vhosts/{name}", auth=auth, timeout=10).raise_for_status()
    requests.put(f"{broker.mgmt_url}/api/permissions/{name}/guest", auth=auth, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    return name


def delete_vhost(broker, name):
    requests.delete(f"{broker.mgmt_url}/api/vhosts/{name}", auth=("guest", "guest"),
                    timeout=10)


def service_config(infra, prefix, vhost=None):
    platform = load_config(ROOT / "deploy" / "config" / "platform.yaml")
    amqp_uri = infra.amqp_uri + (vhost or "")
    return {
        "AMQP_URI": amqp_uri, "MONGO_URI": infra.mongo_uri, "MONGO_DB_PREFIX": prefix,
        "ORG_CODE": ORG, "ORG_NAME": "长子县", "ORG_LEVEL": "county", "PARENT_ORG": "140400",
        "PARENT_ORG_NAME": "长治市",
        "JWT_SECRET": JWT_SECRET, "PERSON_KEY_SECRET": PERSON_SECRET,
        "LINK_SIGNING_KEY": new_private_key(),
        "LINK_TRUST_FILE": str(Path(infra.base) / f"trust-{uuid.uuid4().hex[:12]}.json"),
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "OUTBOX_POLL_SECONDS": 0.5, "EVENT_MAX_ATTEMPTS": 3, "EVENT_RETRY_BASE_MS": 50,
        "LEASE_SECONDS": 5,
        "MEMBERS": platform["MEMBERS"], "PROPOSALS": proposals_settings(platform),
        "LIAISON": platform["LIAISON"], "NOTIFY": dict(platform["NOTIFY"], auto_dispatch=False),
        "PROVINCIAL": platform["PROVINCIAL"],
        "TIMEZONE": "Asia/Shanghai", "max_workers": 10,
    }


def trust_each_other(*configs):
    """Register every platform's public signing key with every other, as
    ``zhzx link`` does for a county and its city."""
    for here in configs:
        for there in configs:
            if there["ORG_CODE"] != here["ORG_CODE"]:
                write_trust(here["LINK_TRUST_FILE"], there["ORG_CODE"],
                            [public_key(there["LINK_SIGNING_KEY"])])


def proposals_settings(platform):
    """The platform's proposal settings with a plenary window open today."""
    settings = dict(platform["PROPOSALS"], scan_drills_apply=True)   # scans as of other days
    today = date.today()
    settings["session_windows"] = [{"session": "测试会议",
                                    "opens": (today - timedelta(days=3)).isoformat(),
                                    "closes": (today + timedelta(days=3)).isoformat()}]
    return settings


def with_port(config):
    """The same platform's config for a second service (its own HTTP port)."""
    return dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")


def start_container(cls, config):
    from nameko.containers import ServiceContainer
    container = ServiceContainer(cls, config)
    container.start()
    return container


def wait_until(condition, timeout=20, interval=0.05, what="condition"):
    """Poll ``condition`` until truthy (returned) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def token(*roles, org=ORG, sub="tester"):
    return issue_token(JWT_SECRET, org=org, roles=list(roles), sub=sub)


class Client:
    """HTTP client for one service, with a role."""

    def __init__(self, config, *roles, org=ORG, sub="tester"):
        self.base = f"http://{config['WEB_SERVER_ADDRESS']}"
        self.headers = {"Authorization": f"Bearer {token(*roles, org=org, sub=sub)}"} \
            if roles else {}

    def request(self, method, path, **kw):
        headers = dict(self.headers, **kw.pop("headers", {}))
        kw.setdefault("timeout", 30)
        return requests.request(method, self.base + path, headers=headers, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class EventProbe:
    """A durable queue bound to an exchange before the test acts, so every
    event published afterwards can be read back."""

    def __init__(self, amqp_uri, exchange, routing_key="#"):
        self.conn = Connection(amqp_uri)
        self.exchange = Exchange(exchange, type="topic", durable=True)
        self.queue = Queue(f"probe-{time.monotonic_ns()}", exchange=self.exchange,
                           routing_key=routing_key, durable=True, auto_delete=False)
        self.queue(self.conn.channel()).declare()
        self.received = []

    def _drain(self):
        with Connection(self.conn.as_uri(include_password=True)) as conn:
            bound = self.queue(conn.channel())
            while True:
                message = bound.get(no_ack=True)
                if message is None:
                    break
                body = message.body
                self.received.append(json.loads(body) if isinstance(body, (str, bytes))
                                     else body)

    def wait_for(self, count, timeout=20, where=None):
        """Every event received so far, once at least ``count`` of them
        (of those matching ``where``, when given) have arrived."""
        def matching():
            return [e for e in self.received if where is None or where(e)]

        def enough():
            self._drain()
            return len(matching()) >= count
        wait_until(enough, timeout, what=f"{count} events on {self.exchange.name}")
        return matching()

    def close(self):
        try:
            with Connection(self.conn.as_uri(include_password=True)) as conn:
                self.queue(conn.channel()).delete()
        finally:
            self.conn.release()


MAX_SHIFT = 5700   # keeps every shifted port (27018 + shift at most) below 32768


def free_shift(start=1000):
    """A ``ZHZX_PORT_SHIFT`` the launcher accepts whose ports are all free
    now, for a second network beside one started by `make up`. Every port
    stays below the OS's ephemeral range (32768 and up), where any outgoing
    connection could take one as its source port while the network starts."""
    import socket
    for shift in range(start, MAX_SHIFT, 97):
        try:
            check_shift(shift)
        except RuntimeError:
            continue
        ports = [spec[k] + shift for spec in PLATFORMS.values() for k in PORT_KEYS
                 if k in spec] + [
            spec["http_base"] + offset + shift for spec in PLATFORMS.values()
            for offset in SERVICES.values()]
        if any(port_open(p) for p in ports):
            continue
        try:
            for p in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return shift
    raise AssertionError("no free range of ports for a second network")
