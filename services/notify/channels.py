"""Sending on the external channels: SMTP e-mail, SMS and WeChat template
messages through configurable HTTP providers, and signed webhooks.

Each ``send_*`` either returns or raises ``SendError`` with a message that
never contains an address (it is stored and shown). Every call has a timeout,
so a provider that hangs costs one delivery attempt, not the service.
"""
import json
import smtplib
import socket
import time
from email.message import EmailMessage
from urllib.parse import urlsplit
from email.utils import formataddr

import requests

from .policy import sign


class SendError(Exception):
    """The attempt failed; the delivery is retried with backoff."""


class NoAddress(Exception):
    """The recipient has no address on this channel; nothing to retry."""


ADDRESS_FIELD = {"email": "email", "sms": "phone", "wechat": "wechat_openid"}


def addresses(contact, channel):
    """The addresses of a resolved contact (a member's, or a unit's list)."""
    field = ADDRESS_FIELD[channel]
    people = contact.get("contacts") if "contacts" in contact else [contact]
    return [p[field] for p in people or () if p.get(field)]


def send_email(conf, to, title, body):
    message = EmailMessage()
    message["Subject"] = title
    message["From"] = formataddr((conf.get("sender_name", "智慧政协"), conf["sender"]))
    message["To"] = ", ".join(to)
    message.set_content(body)
    try:
        with smtplib.SMTP(conf["host"], int(conf["port"]),
                          timeout=float(conf.get("timeout", 10))) as smtp:
            if conf.get("starttls"):
                smtp.starttls()
            if conf.get("username"):
                smtp.login(conf["username"], conf["password"])
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        raise SendError(f"SMTP: {type(exc).__name__}") from None
    if refused:
        raise SendError(f"SMTP refused {len(refused)} of {len(to)} recipients")


def _post(url, timeout, what, **kw):
    try:
        # a redirect is an answer, not an instruction: following it would send
        # the body (a signed event, a message) wherever the other side says
        resp = requests.post(url, timeout=float(timeout), allow_redirects=False, **kw)
    except requests.Timeout:
        raise SendError(f"{what}: timed out after {timeout}s") from None
    except requests.RequestException as exc:
        raise SendError(f"{what}: {type(exc).__name__}") from None
    if resp.status_code >= 300:
        raise SendError(f"{what}: HTTP {resp.status_code}")
    return resp


def send_provider(conf, channel, to, title, body, kind):
    """SMS or WeChat template message through the provider's HTTP endpoint:
    ``POST <url>`` with ``{"to": [...], "title", "text", "template"}``."""
    headers = {"Authorization": f"Bearer {conf['token']}"} if conf.get("token") else {}
    payload = {"to": to, "title": title, "text": body,
               "template": (conf.get("templates") or {}).get(kind, conf.get("template"))}
    _post(conf["url"], conf.get("timeout", 5), channel, json=payload, headers=headers)


def host_allowed(url, allowed):
    """True when ``url`` is https or http to a host of ``allowed`` (exact
    names, or ``*.example.org`` for its subdomains)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return False
    for pattern in allowed or ():
        pattern = str(pattern).lower()
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def send_webhook(hook, body, event_type, now=None, allowed_hosts=()):
    """POST the event to a subscriber, signed with its secret:
    ``X-Zhzx-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``;
    only to a host of ``allowed_hosts`` (``NOTIFY.webhook_hosts``)."""
    if not host_allowed(hook["url"], allowed_hosts):
        raise SendError(f"webhook {hook['id']}: host not in NOTIFY.webhook_hosts")
    ts = int(now if now is not None else time.time())
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Zhzx-Event-Type": event_type,
               "X-Zhzx-Signature": f"t={ts},v1={sign(hook['secret'], ts, raw)}"}
    _post(hook["url"], hook.get("timeout", 5), f"webhook {hook['id']}", data=raw,
          headers=headers)
