"""JWT bearer tokens: claims ``sub``, ``org``, ``roles`` (DESIGN.md, HTTP API)."""
import time
from dataclasses import dataclass, field

import jwt

from .problems import Forbidden, Unauthorized

ALGORITHM = "HS256"
ROLE_PREFIXES = ("unit:", "member:", "station:", "leader:")
PLAIN_ROLES = ("admin", "reviewer", "citizen")


def valid_role(role):
    return role in PLAIN_ROLES or (
        any(role.startswith(p) for p in ROLE_PREFIXES) and len(role.split(":", 1)[1]) > 0)


@dataclass(frozen=True)
class Principal:
    sub: str
    org: str
    roles: tuple = field(default_factory=tuple)

    @property
    def is_admin(self):
        return "admin" in self.roles

    def has_any(self, roles):
        return any(r in self.roles for r in roles)

    def ids(self, kind):
        """Ids this principal holds for a scoped role kind: ids('member') → {...}."""
        prefix = kind + ":"
        return {r[len(prefix):] for r in self.roles if r.startswith(prefix)}


def issue_token(secret, *, org, roles, sub="dev", ttl_seconds=12 * 3600, now=None):
    for role in roles:
        if not valid_role(role):
            raise ValueError(f"unknown role {role!r}")
    now = int(now if now is not None else time.time())
    claims = {"sub": sub, "org": org, "roles": list(roles), "iat": now,
              "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def authenticate(header, *, secret, org):
    """The principal behind an ``Authorization`` header, for this platform only."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("缺少 Bearer 令牌")
    token = header[len("Bearer "):].strip()
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["sub", "org", "roles", "exp"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("令牌已过期") from None
    except jwt.PyJWTError:
        # a token of another platform is signed with that platform's key, so
        # it cannot verify here; its (unverified) org tells the caller why
        if _claimed_org(token) not in (None, org):
            raise Forbidden("令牌属于其他平台") from None
        raise Unauthorized("令牌无效") from None
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("令牌中的角色无效")
    if str(claims.get("org")) != org:
        raise Forbidden("令牌属于其他平台")
    return Principal(sub=str(claims["sub"]), org=org, roles=tuple(roles))


def _claimed_org(token):
    """The ``org`` a token claims, read without verifying it: used only to
    word a refusal, never to grant anything."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return str(claims["org"]) if isinstance(claims, dict) and claims.get("org") else None


def require_roles(principal, roles):
    if roles and not principal.has_any(roles):
        raise Forbidden("当前角色无权执行此操作")
