"""Signed linked events and the secrets guard, as pure code."""
import base64
import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from services.common.config import Identity
from services.common.envelope import make_event
from services.common.names import DOWN, UP
from services.common.required_secrets import SecretsError, check, problems
from services.common.signing import (H_KEY, H_SIGNATURE, Refused, Signer, TrustStore, Verifier,
                                     key_id, new_private_key, public_key, signed_bytes,
                                     write_trust)

CITY = Identity.from_config({"ORG_CODE": "140400", "ORG_LEVEL": "city", "PARENT_ORG": "140000",
                             "CHILD_ORGS": "140428=长子县,140426=黎城县"})
COUNTY = Identity.from_config({"ORG_CODE": "140428", "ORG_LEVEL": "county",
                               "PARENT_ORG": "140400"})


@pytest.fixture
def keys(tmp_path):
    county, city, other = new_private_key(), new_private_key(), new_private_key()
    trust_city, trust_county = tmp_path / "city.json", tmp_path / "county.json"
    write_trust(trust_city, "140428", [public_key(county)])
    write_trust(trust_city, "140426", [public_key(other)])
    write_trust(trust_county, "140400", [public_key(city)])
    return {"county": county, "city": city, "other": other,
            "at_city": Verifier(CITY, TrustStore(trust_city)),
            "at_county": Verifier(COUNTY, TrustStore(trust_county)), "trust_city": trust_city}


def event(origin="140428", type_="member.synced", **extra):
    return dict(make_event(type_, origin=origin, aggregate_id="a1", seq=1,
                           payload={"k": "值"}), **extra)


def signed(key, to, body):
    return Signer(key).headers(to, body)


def test_a_signed_event_from_a_child_verifies_upward_and_from_the_parent_downward(keys):
    body = event()
    keys["at_city"].check(UP, body, signed(keys["county"], "140400", body))
    down = event(origin="140400", type_="task.assigned")
    keys["at_county"].check(DOWN, down, signed(keys["city"], "140428", down))


@pytest.mark.parametrize("case, reason", [
    ("unsigned", "unsigned"),
    ("another county's origin, signed with the sender's own key", "unknown_key"),
    ("a changed payload", "bad_signature"),
    ("re-addressed to another platform", "bad_signature"),
    ("an origin not linked here", "wrong_direction"),
    ("the parent's origin upward", "wrong_direction"),
    ("an unregistered key", "unknown_key"),
    ("older than the replay window", "stale"),
])
def test_what_is_refused_and_why(keys, case, reason):
    body = event()
    headers = signed(keys["county"], "140400", body)
    if case == "unsigned":
        headers = {}
    elif case.startswith("another county"):
        body = event(origin="140426")           # claims 黎城县, signed by 长子县's key
        headers = signed(keys["county"], "140400", body)
    elif case == "a changed payload":
        body = dict(body, payload={"k": "改"})
    elif case.startswith("re-addressed"):
        headers = signed(keys["county"], "140401", body)
    elif case.startswith("an origin not linked"):
        body = event(origin="150100")
        headers = signed(keys["county"], "140400", body)
    elif case.startswith("the parent's origin"):
        body = event(origin="140000")
        headers = signed(keys["county"], "140400", body)
    elif case == "an unregistered key":
        headers = signed(new_private_key(), "140400", body)
    elif case.startswith("older"):
        old = (datetime.now(timezone.utc) - timedelta(days=31)).isoformat()
        body = event(occurred_at=old)
        headers = signed(keys["county"], "140400", body)
    with pytest.raises(Refused) as refused:
        keys["at_city"].check(UP, body, headers)
    assert refused.value.reason == reason
    assert str(refused.value).startswith(f"refused ({reason})")


def test_two_keys_verify_during_a_rotation_and_the_old_one_stops_after(keys):
    new = new_private_key()
    write_trust(keys["trust_city"], "140428", [public_key(keys["county"]), public_key(new)])
    for key in (keys["county"], new):
        body = event()
        keys["at_city"].check(UP, body, signed(key, "140400", body))
    write_trust(keys["trust_city"], "140428", [public_key(new)])   # the window closes
    body = event()
    with pytest.raises(Refused, match="unknown_key"):
        keys["at_city"].check(UP, body, signed(keys["county"], "140400", body))


def test_the_signature_is_ed25519_over_the_documented_bytes(tmp_path):
    """An independent check: openssl verifies what Signer made, over the
    bytes docs/security.md describes (target, newline, canonical JSON)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    key = new_private_key()
    body = event()
    headers = Signer(key).headers("140400", body)
    message = ("140400\n" + json.dumps(body, sort_keys=True, separators=(",", ":"),
                                      ensure_ascii=False)).encode()
    assert message == signed_bytes("140400", body)
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key(key)))
    (tmp_path / "pub.pem").write_bytes(public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(base64.b64decode(headers[H_SIGNATURE]))
    result = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                             str(tmp_path / "pub.pem"), "-rawin", "-in", str(tmp_path / "msg"),
                             "-sigfile", str(tmp_path / "sig")], capture_output=True, text=True)
    assert result.returncode == 0 and "Success" in result.stdout, result.stderr
    assert headers[H_KEY] == key_id(public_key(key))


def test_secrets_are_refused_when_missing_short_or_published():
    good = {"JWT_SECRET": "a" * 48, "PERSON_KEY_SECRET": "b" * 48,
            "LINK_SIGNING_KEY": new_private_key()}
    assert problems(good) == []
    check(good)
    cases = {
        "JWT_SECRET": ("", "JWT_SECRET is not set"),
        "PERSON_KEY_SECRET": ("dev-only-person-key-change-me", "published development value"),
        "LINK_SIGNING_KEY": ("bm90LWEta2V5", "base64 Ed25519 private key"),
    }
    for name, (value, says) in cases.items():
        found = problems(dict(good, **{name: value}))
        assert len(found) == 1 and name in found[0] and says in found[0]
    assert "shorter than 32 bytes" in problems(dict(good, JWT_SECRET="x" * 31))[0]
    with pytest.raises(SecretsError, match="refusing to start: JWT_SECRET is not set"):
        check({k: v for k, v in good.items() if k != "JWT_SECRET"})
    # the provincial secret only where a province endpoint is configured
    assert problems(dict(good, PROVINCE_URL="https://zx.shanxi.example")) == [
        "PROVINCE_SECRET is not set (signs this platform's calls to the provincial platform "
        "(HMAC))"]
    assert problems(dict(good, PROVINCE_URL="https://zx.shanxi.example",
                         PROVINCE_SECRET="c" * 40)) == []


def test_the_committed_configuration_holds_no_secret():
    from services.common.config import load_config
    from tests.support import ROOT
    import os
    saved = {k: os.environ.pop(k) for k in ("JWT_SECRET", "PERSON_KEY_SECRET",
                                            "LINK_SIGNING_KEY") if k in os.environ}
    try:
        settings = load_config(ROOT / "deploy" / "config" / "platform.yaml")
    finally:
        os.environ.update(saved)
    assert len(problems(settings)) == 3


def test_linking_registers_each_sides_keys_in_the_others_trust_file(tmp_path):
    from services.common.signing import register_link
    county_key, city_key, next_city_key = new_private_key(), new_private_key(), new_private_key()
    county_trust, city_trust = tmp_path / "county.json", tmp_path / "city.json"
    with pytest.raises(ValueError):   # a malformed key: nothing is written
        register_link(county_trust, city_trust, county_org="140428", city_org="140400",
                      county_keys=["bm90LWEta2V5"], city_keys=[public_key(city_key)])
    assert not county_trust.exists() and not city_trust.exists()
    register_link(county_trust, city_trust, county_org="140428", city_org="140400",
                  county_keys=[public_key(county_key)],
                  city_keys=[public_key(city_key), public_key(next_city_key)])
    at_city, at_county = Verifier(CITY, TrustStore(city_trust)), Verifier(
        COUNTY, TrustStore(county_trust))
    up = event()
    at_city.check(UP, up, signed(county_key, "140400", up))
    for key in (city_key, next_city_key):           # a rotation: both verify
        down = event(origin="140400", type_="task.assigned")
        at_county.check(DOWN, down, signed(key, "140428", down))
