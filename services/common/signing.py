"""Linked events that prove where they came from.

Every platform holds an Ed25519 key pair (`cryptography`; a small, fast,
deterministic signature with no parameters to get wrong). Its outbox relay signs
every linked event it publishes; a receiving platform applies a linked event only
if all of these hold, and dead-letters it with the reason otherwise:

- it is signed (``unsigned``);
- its ``origin`` may send on this exchange: on ``zhzx.up`` one of this
  platform's child platforms, on ``zhzx.down`` its parent (``wrong_direction``);
- a key is registered for that origin (``unknown_origin``), the signature names
  one of them (``unknown_key``) and verifies (``bad_signature``);
- it is not older than the replay window (``stale``): younger duplicates are
  stopped by the inbox, older ones would outlive their inbox claims.

What is signed: the target platform's code, a newline and the envelope as
canonical JSON (sorted keys, no spaces, UTF-8). The target is part of it, so an
event cannot be re-addressed to another platform; the canonical form survives
the retries and replays that re-serialise the body. The signature and the key
id travel as message headers, so the envelope stays as documented.

Registered keys come from the trust file (``LINK_TRUST_FILE``, JSON
``{"<org>": ["<public key>", …]}``) that linking writes; it is read again when
it changes, so a link made or a key rotated needs no restart. Two keys for one
origin are the rotation window: the new key signs, both verify.
"""
import base64
import binascii
import hashlib
import json
import os
from datetime import datetime, timedelta, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

from .names import DOWN, UP

H_SIGNATURE = "x-zhzx-signature"
H_KEY = "x-zhzx-key"
REASONS = ("unsigned", "wrong_direction", "unknown_origin", "unknown_key", "bad_signature",
           "stale", "not_sent")
DEFAULT_REPLAY_DAYS = 30   # as long as completed inbox claims are kept (inbox.py)


class Refused(Exception):
    """A linked event this platform does not apply; ``reason`` is one of REASONS."""

    def __init__(self, reason, detail):
        super().__init__(f"refused ({reason}): {detail}")
        self.reason = reason


def _raw(b64, what):
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError(f"{what} is not base64") from None
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 bytes (an Ed25519 key), got {len(raw)}")
    return raw


def new_private_key():
    """A fresh signing key, base64 (what ``LINK_SIGNING_KEY`` holds)."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    return base64.b64encode(raw).decode()


def public_key(private_b64):
    """The public half of a signing key, base64 (what the peers register)."""
    key = Ed25519PrivateKey.from_private_bytes(_raw(private_b64, "LINK_SIGNING_KEY"))
    return base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def key_id(public_b64):
    """A short name of a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(_raw(public_b64, "public key")).hexdigest()[:16]


def signed_bytes(target_org, body):
    return (f"{target_org}\n" + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                          ensure_ascii=False)).encode()


class Signer:
    def __init__(self, private_b64):
        self.key = Ed25519PrivateKey.from_private_bytes(_raw(private_b64, "LINK_SIGNING_KEY"))
        self.kid = key_id(public_key(private_b64))

    def headers(self, target_org, body):
        signature = self.key.sign(signed_bytes(target_org, body))
        return {H_KEY: self.kid, H_SIGNATURE: base64.b64encode(signature).decode()}


class TrustStore:
    """The public keys registered per origin, read from the trust file again
    whenever it changes."""

    def __init__(self, path):
        self.path = path
        self._stamp = None
        self._keys = {}

    def keys(self, origin):
        self._reload()
        return self._keys.get(str(origin), {})

    def _reload(self):
        try:
            stat = os.stat(self.path) if self.path else None
        except FileNotFoundError:
            stat = None
        stamp = (stat.st_mtime_ns, stat.st_size) if stat else None
        if stamp == self._stamp:
            return
        keys = {}
        if stat:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            for org, publics in data.items():
                keys[str(org)] = {key_id(p): Ed25519PublicKey.from_public_bytes(
                    _raw(p, f"key of {org}")) for p in publics}
        self._keys, self._stamp = keys, stamp


def write_trust(path, org, publics):
    """Register ``publics`` (base64 public keys) for ``org`` in the trust file
    at ``path``, replacing what it held for that org."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        data = {}
    data[str(org)] = list(dict.fromkeys(publics))
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def register_link(county_trust, city_trust, *, county_org, city_org, county_keys, city_keys):
    """Each side of a county–city link registers the other's public keys
    (two during a rotation) in its trust file."""
    for key in [*county_keys, *city_keys]:
        key_id(key)   # a ValueError naming what is wrong, before anything is written
    write_trust(city_trust, county_org, county_keys)
    write_trust(county_trust, city_org, city_keys)


class Verifier:
    """Checks a linked event received on ``exchange`` by platform ``identity``."""

    def __init__(self, identity, trust, replay_days=DEFAULT_REPLAY_DAYS):
        self.identity = identity
        self.trust = trust
        self.window = timedelta(days=replay_days)

    def check(self, exchange, body, headers, now=None):
        origin = str(body.get("origin"))
        if exchange == UP:
            allowed = set(dict(self.identity.children))
            if origin not in allowed:
                raise Refused("wrong_direction",
                              f"origin {origin} is not a platform linked below {self.identity.org_code}")
        elif exchange == DOWN:
            if origin != str(self.identity.parent_org):
                raise Refused("wrong_direction",
                              f"origin {origin} is not the parent platform of {self.identity.org_code}")
        else:
            raise Refused("wrong_direction", f"not a link exchange: {exchange}")
        headers = headers or {}
        signature, kid = headers.get(H_SIGNATURE), headers.get(H_KEY)
        if not signature or not kid:
            raise Refused("unsigned", f"event of {origin} carries no signature")
        keys = self.trust.keys(origin)
        if not keys:
            raise Refused("unknown_origin", f"no key registered for {origin}")
        key = keys.get(str(kid))
        if key is None:
            raise Refused("unknown_key", f"key {kid} is not registered for {origin}")
        try:
            key.verify(base64.b64decode(signature), signed_bytes(self.identity.org_code, body))
        except (InvalidSignature, binascii.Error, ValueError):
            raise Refused("bad_signature", f"signature of {origin} does not verify") from None
        try:
            occurred = datetime.fromisoformat(str(body["occurred_at"]).replace("Z", "+00:00"))
            if occurred.tzinfo is None:
                occurred = occurred.replace(tzinfo=timezone.utc)
        except (KeyError, ValueError):
            raise Refused("stale", "occurred_at is not a time") from None
        now = now or datetime.now(timezone.utc)
        if now - occurred > self.window:
            raise Refused("stale", f"occurred {occurred.date()}, before the replay window "
                                   f"of {self.window.days} days")
