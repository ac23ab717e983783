"""Setting up and watching the federation links between a county broker and
its city broker, through the RabbitMQ management HTTP API.

Idempotent: a second ``link`` with nothing changed writes exactly the values
already there, which RabbitMQ ignores, so no link restarts. The link user's
password is kept (read back from the upstream already configured) instead of
being rotated on every run: a new password would change the upstream's URI
and restart the link.

Every upstream says ``resource-cleanup-mode: never``: by default RabbitMQ
deletes the upstream broker's federation queue (and whatever it buffers)
whenever the link stops or restarts — on a re-link, a downstream broker
stopped, or the upstream removed. With ``never`` the queue and its messages
survive all of these; ``unlink`` deletes it explicitly.

- both brokers: the link exchanges ``zhzx.up`` and ``zhzx.down`` (topic, durable);
- county broker: user ``link-<city org>`` that may read ``zhzx.up`` and manage
  only the federation's own queue and exchange; the city connects as it;
- city broker: user ``link-<county org>``, the same for ``zhzx.down``;
- city broker: upstream ``county-<org>`` (the county broker, exchange
  ``zhzx.up``, ``ack-mode: on-confirm``) and the policy federating ``zhzx.up``
  from every upstream of the set ``zhzx-up``;
- county broker: upstream ``city-<org>`` (exchange ``zhzx.down``) and the
  policy federating ``zhzx.down``.
"""
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode, urlsplit

import requests

from .linkage import DOWN, UP
from .names import DLQ_NAME, H_ERROR, H_EXCHANGE

VHOST = "%2F"


@dataclass
class BrokerRef:
    """One broker as the link sees it: its management API (with an admin
    user ``(name, password)``) and the AMQP address the other broker reaches
    it at. ``tls`` is the directory, on this broker's own nodes, holding
    ``ca.crt``, ``tls.crt`` and ``tls.key`` (cert-manager's names): when it
    is given, this broker's link connects over ``amqps`` to the other
    broker's TLS listener (``amqp_port`` of the other is then its TLS port),
    verifies its certificate and host name against ``ca.crt``, and presents
    ``tls.crt``."""
    mgmt_url: str
    amqp_host: str
    amqp_port: int
    admin: tuple
    tls: str = None

    def call(self, method, path, json=None, ok=(200, 201, 204)):
        resp = requests.request(method, f"{self.mgmt_url}/api/{path}", json=json,
                                auth=self.admin, timeout=15)
        if resp.status_code not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:300]}")
        return resp.json() if resp.content and resp.headers.get(
            "content-type", "").startswith("application/json") else None


def _declare_exchanges(broker):
    for name in (UP, DOWN):
        broker.call("PUT", f"exchanges/{VHOST}/{quote(name, safe='')}",
                    {"type": "topic", "durable": True, "auto_delete": False})


def _current_password(downstream, name, user):
    """The password of ``user`` in upstream ``name``'s URI, if configured."""
    try:
        value = downstream.call("GET", f"parameters/federation-upstream/{VHOST}/{name}",
                                ok=(200,))["value"]
    except (RuntimeError, KeyError, TypeError):
        return None
    parts = urlsplit(value.get("uri", ""))
    if parts.username and unquote(parts.username) == user and parts.password:
        return unquote(parts.password)
    return None


def _link_user(broker, user, exchange, password):
    """A user that can only feed a federation link from ``exchange``. Setting
    the same password again changes nothing for open connections."""
    broker.call("PUT", f"users/{quote(user, safe='')}", {"password": password, "tags": ""})
    own = "^federation: "
    broker.call("PUT", f"permissions/{VHOST}/{quote(user, safe='')}", {
        "configure": own, "write": own, "read": f"^(federation: |{re.escape(exchange)}$)"})
    return password


def upstream_uri(downstream, upstream, user, password):
    """The URI ``downstream``'s link connects to ``upstream`` with: ``amqps``
    with peer verification when the downstream has certificates."""
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    address = f"{upstream.amqp_host}:{upstream.amqp_port}/%2F"
    if not downstream.tls:
        return f"amqp://{credentials}@{address}"
    files = {key: f"{downstream.tls.rstrip('/')}/{name}" for key, name in (
        ("cacertfile", "ca.crt"), ("certfile", "tls.crt"), ("keyfile", "tls.key"))}
    return f"amqps://{credentials}@{address}?" + urlencode(dict(
        files, verify="verify_peer", fail_if_no_peer_cert="true",
        server_name_indication=upstream.amqp_host))


def _upstream(downstream, name, upstream, user, password, exchange, set_name):
    uri = upstream_uri(downstream, upstream, user, password)
    downstream.call("PUT", f"parameters/federation-upstream/{VHOST}/{name}", {"value": {
        "uri": uri, "exchange": exchange, "ack-mode": "on-confirm", "trust-user-id": False,
        "reconnect-delay": 2, "max-hops": 1, "resource-cleanup-mode": "never"}})
    members = downstream.call("GET", f"parameters/federation-upstream-set/{VHOST}",
                              ok=(200,)) or []
    current = next((m["value"] for m in members if m["name"] == set_name), [])
    wanted = [u for u in current if u.get("upstream") != name] + [{"upstream": name}]
    downstream.call("PUT", f"parameters/federation-upstream-set/{VHOST}/{set_name}",
                    {"value": wanted})
    downstream.call("PUT", f"policies/{VHOST}/{set_name}", {
        "pattern": f"^{re.escape(exchange)}$", "apply-to": "exchanges", "priority": 10,
        "definition": {"federation-upstream-set": set_name}})


def link(county, city, *, county_org, city_org):
    """Link a county broker and its city broker both ways; returns what was set."""
    for broker in (county, city):
        _declare_exchanges(broker)
    up_user, up_name = f"link-{city_org}", f"county-{county_org}"
    up_password = _current_password(city, up_name, up_user) or secrets.token_urlsafe(24)
    _link_user(county, up_user, UP, up_password)
    _upstream(city, up_name, county, up_user, up_password, UP, "zhzx-up")
    down_user, down_name = f"link-{county_org}", f"city-{city_org}"
    down_password = _current_password(county, down_name, down_user) or secrets.token_urlsafe(24)
    _link_user(city, down_user, DOWN, down_password)
    _upstream(county, down_name, city, down_user, down_password, DOWN, "zhzx-down")
    return {"up": {"downstream": "city", "upstream": f"county-{county_org}", "user": up_user},
            "down": {"downstream": "county", "upstream": f"city-{city_org}",
                     "user": down_user}}


def unlink(county, city, *, county_org, city_org):
    """Remove both links' upstreams (the policies stay for other counties) and
    the federation queues they leave on the upstream brokers: events waiting
    in them are lost, so only unlink a drained link."""
    for downstream, upstream, name, exchange in (
            (city, county, f"county-{county_org}", UP),
            (county, city, f"city-{city_org}", DOWN)):
        downstream.call("DELETE", f"parameters/federation-upstream/{VHOST}/{name}",
                        ok=(204, 404))
        queue = federation_queue(exchange, downstream)
        upstream.call("DELETE", f"queues/{VHOST}/{quote(queue, safe='')}", ok=(204, 404))


def federation_queue(exchange, downstream):
    """The queue on the upstream broker that buffers ``exchange`` for the
    downstream broker (named after the downstream's cluster name)."""
    return f"federation: {exchange} -> {downstream.call('GET', 'cluster-name')['name']}"


def refused(downstream, exchange, limit=1000):
    """The linked events of ``exchange`` that ``downstream`` dead-lettered
    unapplied (unsigned, wrong origin …), counted by reason; read from its
    dead-letter queue through the management API, which puts them back."""
    from .signing import REASONS
    try:
        messages = downstream.call("POST", f"queues/{VHOST}/{DLQ_NAME}/get", {
            "count": limit, "ackmode": "ack_requeue_true", "encoding": "auto"}, ok=(200,))
    except RuntimeError:
        return {}   # no dead-letter queue yet
    counts = {}
    for m in messages or []:
        headers = (m.get("properties") or {}).get("headers") or {}
        error = str(headers.get(H_ERROR) or "")
        if headers.get(H_EXCHANGE) == exchange and error.startswith("refused ("):
            reason = error[len("refused ("):].split(")", 1)[0]
            if reason in REASONS:
                counts[reason] = counts.get(reason, 0) + 1
    return counts


def status(county, city, now=None):
    """Each link's state (``unreachable`` when its downstream broker does not
    answer) and address (``amqps://…`` over TLS, without credentials), the events buffered on its upstream broker and how old the
    oldest of them is (``None`` when nothing is buffered or not known), and
    the linked events its downstream refused, by reason."""
    now = time.time() if now is None else now
    out = []
    for name, downstream, upstream, exchange in (("up", city, county, UP),
                                                 ("down", county, city, DOWN)):
        row = {"link": name, "exchange": exchange, "state": "unreachable", "error": None,
               "uri": None, "buffered": None, "oldest_seconds": None, "refused": {}}
        try:
            links = [l for l in downstream.call("GET", f"federation-links/{VHOST}", ok=(200,))
                     or [] if l.get("exchange") == exchange]
            row.update(state=links[0]["status"] if links else "absent",
                       error=links[0].get("error") if links else None,
                       uri=links[0].get("uri") if links else None,
                       refused=refused(downstream, exchange))
        except (requests.RequestException, RuntimeError) as exc:
            row["error"] = f"downstream broker: {type(exc).__name__}"
        try:
            queues = [q for q in upstream.call("GET", f"queues/{VHOST}", ok=(200,)) or []
                      if q["name"].startswith(f"federation: {exchange} ")]
            row["buffered"] = sum(q.get("messages", 0) for q in queues)
            heads = [q["head_message_timestamp"] for q in queues
                     if q.get("messages") and isinstance(q.get("head_message_timestamp"), int)]
            row["oldest_seconds"] = max(0, round(now - min(heads))) if heads else None
        except (requests.RequestException, RuntimeError) as exc:
            row["error"] = (row["error"] + "; " if row["error"] else "") + \
                f"upstream broker: {type(exc).__name__}"
        out.append(row)
    return out
