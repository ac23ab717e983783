"""Preferences, quiet hours, digests, retries and webhook signatures. Pure."""
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

CHANNELS = ("inbox", "email", "sms", "wechat")
EXTERNAL = ("email", "sms", "wechat")


def configured_channels(settings):
    """The external channels a platform's notify settings can deliver on."""
    settings = settings or {}
    out = []
    if (settings.get("smtp") or {}).get("host") and (settings.get("smtp") or {}).get("sender"):
        out.append("email")
    out += [c for c in ("sms", "wechat") if (settings.get(c) or {}).get("url")]
    return tuple(out)


def clock(text):
    hours, minutes = str(text).split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class Preferences:
    """One person's choices: channels per kind of message (``default`` for the
    rest), quiet hours (local time) and the daily digest."""
    channels: dict = field(default_factory=lambda: {"default": ["inbox"]})
    quiet: tuple = None          # (start, end) as datetime.time, may wrap midnight
    digest: bool = False

    @classmethod
    def of(cls, raw, defaults=None):
        merged = dict(defaults or {})
        merged.update({k: v for k, v in (raw or {}).items() if v is not None})
        quiet = merged.get("quiet")
        return cls(channels=dict(merged.get("channels") or {"default": ["inbox"]}),
                   quiet=(clock(quiet["start"]), clock(quiet["end"])) if quiet else None,
                   digest=bool(merged.get("digest")))

    def channels_for(self, kind, available=EXTERNAL):
        """The inbox, then the chosen external channels that the platform has
        configured (``available``): a channel without a provider is skipped."""
        chosen = self.channels.get(kind, self.channels.get("default", []))
        return ["inbox"] + [c for c in chosen if c in EXTERNAL and c in available]


    def is_quiet(self, now):
        if not self.quiet:
            return False
        start, end = self.quiet
        if start == end:
            return False
        t = now.time()
        return start <= t < end if start < end else (t >= start or t < end)

    def quiet_ends(self, now):
        """The first moment at or after ``now`` outside quiet hours."""
        if not self.is_quiet(now):
            return now
        end = datetime.combine(now.date(), self.quiet[1])
        return end if end > now else end + timedelta(days=1)


def hold(delivery, prefs, now, digest_at):
    """What to do with a due external delivery now: ``("send", None)``,
    ``("later", when)`` for quiet hours, or ``("digest", day)`` to merge it
    into the recipient's next daily digest. Urgent messages never wait."""
    if delivery.get("urgent") or delivery.get("digest_of"):
        return "send", None
    if prefs.digest:
        day = now.date() if now.time() < digest_at else now.date() + timedelta(days=1)
        return "digest", day.isoformat()
    if prefs.is_quiet(now):
        return "later", prefs.quiet_ends(now)
    return "send", None


def backoff(attempts, base_seconds, max_seconds):
    """Seconds to wait before attempt ``attempts + 1`` (1, 2, 4 … × base)."""
    return min(base_seconds * (2 ** max(attempts - 1, 0)), max_seconds)


def digest_text(items):
    """One message merging ``items`` (notifications, oldest first)."""
    lines = [f"{i}. 【{n['title']}】{n['body']}" for i, n in enumerate(items, start=1)]
    return f"今日消息汇总（共 {len(items)} 条）", "\n".join(lines)


def sign(secret, timestamp, body):
    """Webhook signature: hex HMAC-SHA256 over ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return mac.hexdigest()


def verify(secret, header, body, now_ts, tolerance=300):
    """Check ``X-Zhzx-Signature: t=<unix seconds>,v1=<hex>`` (for receivers)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now_ts - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), parts.get("v1", ""))
