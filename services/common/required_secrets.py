"""The secrets a platform's services need, checked before they start.

A service refuses to start, naming the setting, when a secret is missing,
shorter than 32 bytes, or one of the values ever published with the product
(they were in its configuration file and are in its history). No setting falls
back to a committed value: `make up` and the tests generate their own, and a
production deployment brings its own (docs/security.md says how each is made).
"""
import base64
import binascii

from nameko.extensions import DependencyProvider

# what each secret protects (the message names it)
REQUIRED = {
    "JWT_SECRET": "signs the API tokens of this platform",
    "PERSON_KEY_SECRET": "keys person_id, shared by the platforms of a province",
    "LINK_SIGNING_KEY": "signs this platform's linked events (Ed25519, base64)",
    "PROVINCE_SECRET": "signs this platform's calls to the provincial platform (HMAC)",
}
# secrets needed only when a setting is given: {secret: setting}
NEEDED_WITH = {"PROVINCE_SECRET": "PROVINCE_URL"}
MIN_BYTES = 32
PUBLISHED = frozenset({
    "dev-only-jwt-secret-change-me-0000000", "dev-only-person-key-change-me",
    "test-jwt-secret-of-at-least-32-bytes!", "e2e-person-key", "check", "secret",
    "change-me", "changeme",
})


class SecretsError(RuntimeError):
    pass


def needed(config):
    """The secrets ``config`` needs: all, but those of a setting it leaves empty."""
    return [n for n in REQUIRED if n not in NEEDED_WITH or config.get(NEEDED_WITH[n])]


def problems(config, names=None):
    """One line per secret that may not be used, empty when all are fine."""
    out = []
    names = needed(config) if names is None else names
    for name in names:
        value = config.get(name)
        value = "" if value is None else str(value)
        what = REQUIRED.get(name, "a secret")
        if not value.strip():
            out.append(f"{name} is not set ({what})")
        elif value in PUBLISHED:
            out.append(f"{name} is a published development value; generate one")
        elif name == "LINK_SIGNING_KEY":
            try:
                if len(base64.b64decode(value, validate=True)) != 32:
                    raise ValueError
            except (binascii.Error, ValueError):
                out.append(f"{name} must be a base64 Ed25519 private key of 32 bytes "
                           "(`zhzx keygen`)")
        elif len(value.encode()) < MIN_BYTES:
            out.append(f"{name} is shorter than {MIN_BYTES} bytes")
    return out


def check(config, names=None):
    found = problems(config, names)
    if found:
        raise SecretsError("refusing to start: " + "; ".join(found))


class RequiredSecrets(DependencyProvider):
    """Fails the container's start when a secret may not be used."""

    def setup(self):
        check(self.container.config)
