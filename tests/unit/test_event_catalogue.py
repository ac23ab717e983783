"""The event registry, and the catalogue generated from it."""
import re

import pytest
import yaml

from services import catalogue
from services.common.events import EventContractError
from services.common.names import DOWN, UP
from services.common.outbox import Change
from tests.support import ROOT


def mentioned_types():
    """Event type literals anywhere in the services' code."""
    types = set()
    for path in (ROOT / "services").glob("*/*.py"):
        types.update(re.findall(r'"((?:member|meeting|proposal|unit|station|request|consultation|'
                                r'opinion|task|statistics)\.[a-z_]+)"', path.read_text()))
    return types


def test_the_committed_catalogue_is_what_the_registries_generate():
    assert catalogue.main(["--check"]) == 0, "run: python -m services.catalogue"


def test_every_type_the_code_names_is_registered():
    types = catalogue.load()
    from services.proposals import domain
    named = mentioned_types() | {f"proposal.{s}" for s in domain.DECISIONS.values()}
    assert len(types) > 90
    assert named <= set(types), sorted(named - set(types))


def test_linked_channels_are_the_real_routing_keys_on_the_link_exchanges():
    doc = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    channels = {c["title"]: c for c in doc["channels"].values()}
    referred = channels["proposal.referred"]
    assert referred["address"] == "{org}.proposal.referred"
    assert "org" in referred["parameters"]
    assert referred["bindings"]["amqp"]["exchange"]["name"] == UP
    assert channels["task.assigned"]["bindings"]["amqp"]["exchange"]["name"] == DOWN
    local = channels["proposal.registered"]
    assert local["address"] == "proposal.registered"
    assert local["bindings"]["amqp"]["exchange"]["name"] == "proposals.events"


def test_change_refuses_an_unknown_type_or_a_payload_off_its_schema():
    catalogue.load()
    change = Change("140428", actor="admin")
    with pytest.raises(EventContractError, match="unknown event type"):
        change.event("proposal.teleported", "p1", 1, {})
    with pytest.raises(EventContractError, match="payload"):
        change.event("unit.created", "u1", 1, {"unit_id": "u1", "name": "县教育局"})
    with pytest.raises(EventContractError, match="payload"):   # a field nobody declared
        change.event("unit.created", "u1", 1, {"unit_id": "u1", "name": "县教育局", "kind": "gov",
                                               "topics": [], "active": True, "phone": "1"})
    with pytest.raises(EventContractError, match="zhzx.up"):  # linked, sent as local
        change.event("member.synced", "m1", 1, {"member_id": "m1"})
    event = change.event("unit.created", "u1", 1, {"unit_id": "u1", "name": "县教育局",
                                                   "kind": "gov", "topics": [], "active": True})
    assert event["type"] == "unit.created" and event["payload"]["name"] == "县教育局"
