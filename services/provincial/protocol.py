"""The adapter ⇄ province protocol, as pure code: request signatures, answers
classed as transient or permanent, and the code tables (docs/provincial.md).

Signature: ``X-Signature = hex(HMAC(secret, canonical))`` where ``canonical``
is, joined by ``\\n``: the method, the path, the query sorted by name then
value (``k=v`` joined by ``&``, percent-encoded as RFC 3986), ``X-Timestamp``
(milliseconds), ``X-Nonce``, and the hex digest of the body with the same
hash (the empty body's digest for none). HMAC-SM3 (国密) by default,
HMAC-SHA256 by configuration; through pyca ``cryptography`` (OpenSSL).
"""
import hmac as std_hmac
import secrets
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, hmac

ALGORITHMS = {"hmac-sm3": hashes.SM3, "hmac-sha256": hashes.SHA256}
SKEW_SECONDS = 300   # the province refuses a timestamp further off than this


def digest(algorithm, body):
    h = hashes.Hash(ALGORITHMS[algorithm]())
    h.update(body or b"")
    return h.finalize().hex()


def canonical(method, path, query, timestamp_ms, nonce, body, algorithm="hmac-sm3"):
    pairs = sorted((str(k), str(v)) for k, v in (query or {}).items())
    encoded = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in pairs)
    return "\n".join([method.upper(), path, encoded, str(timestamp_ms), nonce,
                      digest(algorithm, body)])


def signature(secret, text, algorithm="hmac-sm3"):
    mac = hmac.HMAC(secret.encode() if isinstance(secret, str) else secret,
                    ALGORITHMS[algorithm]())
    mac.update(text.encode())
    return mac.finalize().hex()


def signed_headers(app_id, secret, method, path, query, body, algorithm="hmac-sm3",
                   now_ms=None, nonce=None):
    """The four authentication headers of one request."""
    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    nonce = nonce or secrets.token_hex(16)
    text = canonical(method, path, query, stamp, nonce, body, algorithm)
    return {"X-App-Id": app_id, "X-Timestamp": str(stamp), "X-Nonce": nonce,
            "X-Signature": signature(secret, text, algorithm)}


def verify(secret, method, path, query, body, headers, algorithm="hmac-sm3", now_ms=None,
           seen_nonce=lambda nonce: False):
    """``None`` when a signed request (a callback from the province) is
    authentic and fresh, else the error code the protocol gives for it."""
    try:
        stamp = int(headers.get("X-Timestamp") or "")
    except ValueError:
        return "AUTH_TIMESTAMP"
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - stamp) > SKEW_SECONDS * 1000:
        return "AUTH_TIMESTAMP"
    nonce = headers.get("X-Nonce") or ""
    wanted = signature(secret, canonical(method, path, query, stamp, nonce, body, algorithm),
                       algorithm)
    if not std_hmac.compare_digest(wanted, headers.get("X-Signature") or ""):
        return "AUTH_SIGNATURE"
    if not nonce or seen_nonce(nonce):
        return "AUTH_NONCE_REUSED"
    return None


# --- answers -----------------------------------------------------------------

@dataclass
class Answer:
    """What a call's outcome means for the delivery: ``ok``, ``transient``
    (retry later, after ``retry_after`` seconds if the province said) or
    ``permanent`` (park the item with the province's code and message)."""
    kind: str
    status: int = None
    code: str = None
    message: str = None
    retry_after: float = None
    body: dict = None


def retry_after_seconds(value, now=None):
    """``Retry-After`` as seconds: a number or an HTTP date."""
    if value in (None, ""):
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def classify(status, body=None, headers=None):
    body = body if isinstance(body, dict) else {}
    code, message = body.get("code"), body.get("message")
    if 200 <= status < 300:
        return Answer("ok", status, body=body)
    if status == 429:
        return Answer("transient", status, code or "RATE_LIMITED", message,
                      retry_after_seconds((headers or {}).get("Retry-After")))
    if status >= 500 or status in (408,):
        return Answer("transient", status, code or "UNAVAILABLE", message,
                      retry_after_seconds((headers or {}).get("Retry-After")))
    return Answer("permanent", status, code or f"HTTP_{status}", message or "")


def unreachable(error):
    """A timeout or a refused connection: transient."""
    return Answer("transient", None, "UNREACHABLE", type(error).__name__)


# --- code tables ----------------------------------------------------------------

class Unmapped(ValueError):
    """A local value with no provincial code in the configured tables."""

    def __init__(self, table, value):
        super().__init__(f"{table} “{value}” 没有对应的省级编码（请在 PROVINCIAL.codes.{table} 中配置）")
        self.table, self.value = table, value


def to_province(tables, table, value):
    if value in (None, ""):
        return None
    mapped = (tables.get(table) or {}).get(value)
    if mapped is None:
        raise Unmapped(table, value)
    return mapped
