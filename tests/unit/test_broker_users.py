"""The services' broker users: what their permissions let through (the
regexes are PCRE in RabbitMQ; Python's ``re`` reads these the same way)."""
import re

from deploy.local import restricted_calls
from services.common.broker_users import permissions, topic_permissions

CONTACTS = {"members.get_contact", "members.get_contacts", "liaison.get_station_contacts",
            "liaison.get_request_contact", "proposals.get_unit_contacts"}


def allowed(pattern, name):
    return re.search(pattern, name) is not None


def test_every_contact_call_is_restricted_to_notify():
    restricted = restricted_calls()
    assert {k for k, v in restricted.items() if v == ("notify",)} == CONTACTS
    # the text and author of an item for the province: its adapter only
    assert restricted["liaison.opinion_for_province"] == ("provincial",)


def test_a_service_uses_its_own_queues_only():
    p = permissions("proposals")
    own = ["rpc-proposals", "rpc.reply-proposals-0f1e", "evt-liaison-opinion.adopted--proposals.on_x",
           "evt-members-member.left--proposals.on_left.retry",
           "link-zhzx.up-proposal.forwarded--proposals.on_forwarded"]
    for name in own:
        assert all(allowed(p[k], name) for k in ("configure", "write", "read")), name
    others = ["rpc-members", "rpc.reply-members-0f1e", "evt-liaison-opinion.adopted--notify.on_x",
              "link-zhzx.up-x--members.on_x", "zhzx.dlq.extra", "rpc-proposals2"]
    for name in others:
        assert not any(allowed(p[k], name) for k in ("configure", "write", "read")), name


def test_a_service_publishes_its_own_events_only():
    p = permissions("liaison")
    assert allowed(p["write"], "liaison.events") and not allowed(p["write"], "members.events")
    assert allowed(p["read"], "members.events")          # it binds to others' events
    for exchange in ("nameko-rpc", "zhzx.up", "zhzx.down", "amq.default"):
        assert allowed(p["write"], exchange)
    assert not allowed(p["write"], "amq.topic")
    assert not allowed(p["read"], "zhzx.dlq")            # dead letters are for operators


def test_only_the_named_callers_may_publish_a_restricted_call():
    restricted = {"members.get_contact": ("notify",), "members.get_contacts": ("notify",)}
    assert topic_permissions("notify", restricted) == []
    restricted = restricted_calls()
    [notify] = topic_permissions("notify", restricted)
    assert not allowed(notify["write"], "liaison.opinion_for_province")
    assert allowed(notify["write"], "members.get_contact")
    [topic] = topic_permissions("proposals", restricted)
    assert topic["exchange"] == "nameko-rpc"
    for key in CONTACTS:
        assert not allowed(topic["write"], key), key
    for key in ("members.get_member", "members.get_contact_card", "liaison.get_station",
                "0b7f3c2e-reply", "members.get_contacts.x"):
        assert allowed(topic["write"], key), key
