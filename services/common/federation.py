"""Setting up and watching the federation links between a county broker and
its city broker, through the RabbitMQ management HTTP API. Idempotent: every
call PUTs the whole wanted state.

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
from urllib.parse import quote

import requests

from .linkage import DOWN, UP

VHOST = "%2F"


@dataclass
class BrokerRef:
    """One broker as the link sees it: its management API (with an admin
    user) and the AMQP address the other broker reaches it at."""
    mgmt_url: str
    amqp_host: str
    amqp_port: int
    admin: tuple = ("guest", "guest")

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


def _link_user(broker, user, exchange):
    """A user that can only feed a federation link from ``exchange``."""
    password = secrets.token_urlsafe(24)
    broker.call("PUT", f"users/{quote(user, safe='')}", {"password": password, "tags": ""})
    own = "^federation: "
    broker.call("PUT", f"permissions/{VHOST}/{quote(user, safe='')}", {
        "configure": own, "write": own, "read": f"^(federation: |{re.escape(exchange)}$)"})
    return password


def _upstream(downstream, name, upstream, user, password, exchange, set_name):
    uri = f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@" \
          f"{upstream.amqp_host}:{upstream.amqp_port}/%2F"
    downstream.call("PUT", f"parameters/federation-upstream/{VHOST}/{name}", {"value": {
        "uri": uri, "exchange": exchange, "ack-mode": "on-confirm", "trust-user-id": False,
        "reconnect-delay": 2, "max-hops": 1}})
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
    up_user = f"link-{city_org}"
    up_password = _link_user(county, up_user, UP)
    _upstream(city, f"county-{county_org}", county, up_user, up_password, UP, "zhzx-up")
    down_user = f"link-{county_org}"
    down_password = _link_user(city, down_user, DOWN)
    _upstream(county, f"city-{city_org}", city, down_user, down_password, DOWN, "zhzx-down")
    return {"up": {"downstream": "city", "upstream": f"county-{county_org}", "user": up_user},
            "down": {"downstream": "county", "upstream": f"city-{city_org}",
                     "user": down_user}}


def unlink(county, city, *, county_org, city_org):
    """Remove both links' upstreams (the policies stay for other counties).
    Removing an upstream deletes its buffered queue on the upstream broker:
    events waiting in it are lost, so only unlink a drained link."""
    city.call("DELETE", f"parameters/federation-upstream/{VHOST}/county-{county_org}",
              ok=(204, 404))
    county.call("DELETE", f"parameters/federation-upstream/{VHOST}/city-{city_org}",
                ok=(204, 404))


def status(county, city, now=None):
    """Each link's state (``unreachable`` when its downstream broker does not
    answer), the events buffered on its upstream broker and how old the
    oldest of them is (``None`` when nothing is buffered or not known)."""
    now = time.time() if now is None else now
    out = []
    for name, downstream, upstream, exchange in (("up", city, county, UP),
                                                 ("down", county, city, DOWN)):
        row = {"link": name, "exchange": exchange, "state": "unreachable", "error": None,
               "buffered": None, "oldest_seconds": None}
        try:
            links = [l for l in downstream.call("GET", f"federation-links/{VHOST}", ok=(200,))
                     or [] if l.get("exchange") == exchange]
            row.update(state=links[0]["status"] if links else "absent",
                       error=links[0].get("error") if links else None)
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
