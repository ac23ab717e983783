"""The lease that keeps one replica per platform on each background duty,
against the Mongo wire server in use, with the clocks under the test's hand."""
import uuid
from datetime import datetime, timedelta

import eventlet
import pymongo
import pytest

from services.common.lease import LEASES, Lease

pytestmark = pytest.mark.service


class Clocks:
    """A wall clock and a monotonic clock the test moves."""

    def __init__(self):
        self.wall = datetime(2026, 11, 27, 9, 0, 0)
        self.mono = 1000.0

    def advance(self, seconds):
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def leases(infra):
    client = pymongo.MongoClient(infra.mongo_uri)
    name = f"lease_{uuid.uuid4().hex[:8]}"
    yield client[name][LEASES]
    client.drop_database(name)


def replica(leases, clocks, holder, seconds=10):
    return Lease(leases, "outbox", holder, seconds=seconds, clock=lambda: clocks.wall,
                 monotonic=lambda: clocks.mono)


def test_one_holder_renews_and_another_takes_over_only_after_expiry_with_a_larger_token(leases):
    clocks = Clocks()
    a, b = replica(leases, clocks, "a"), replica(leases, clocks, "b")
    assert a.hold() == 1 and b.hold() is None
    assert a.valid() and not b.valid()
    clocks.advance(6)
    assert a.hold() == 1 and b.hold() is None          # renewed: still a's
    clocks.advance(9)
    assert b.hold() is None                             # 9 s after the renewal: not expired
    clocks.advance(2)                                   # a stopped renewing 11 s ago
    assert b.hold() == 2 and b.valid()
    assert leases.find_one({"_id": "outbox"})["holder"] == "b"


def test_a_paused_holder_cannot_act_when_it_resumes_after_losing_the_lease(leases):
    clocks = Clocks()
    a, b = replica(leases, clocks, "a"), replica(leases, clocks, "b")
    assert a.keep()
    clocks.advance(30)                                  # a is paused (GC, stopped VM, partition)
    assert b.keep() and b.token == 2
    # a resumes: its own deadline has passed, and renewing fails: the token moved on
    assert not a.valid()
    assert not a.keep() and a.token is None
    assert b.keep()


def test_a_holder_past_its_local_deadline_renews_before_acting_if_nobody_took_over(leases):
    clocks = Clocks()
    a = replica(leases, clocks, "a")
    assert a.keep()
    clocks.advance(8.5)                                 # past 0.8 × 10 s: not valid
    assert not a.valid()
    assert a.keep() and a.token == 1 and a.valid()      # renewed, same token


def test_a_released_lease_is_taken_at_once(leases):
    clocks = Clocks()
    a, b = replica(leases, clocks, "a"), replica(leases, clocks, "b")
    assert a.hold() == 1
    a.release()
    assert not a.valid() and b.hold() == 2


def test_of_many_contenders_for_a_free_lease_exactly_one_wins(leases):
    clocks = Clocks()
    contenders = [replica(leases, clocks, f"r{i}") for i in range(8)]
    pool = eventlet.GreenPool(8)
    won = [t for t in pool.imap(lambda lease: lease.hold(), contenders) if t is not None]
    assert won == [1]
    clocks.advance(20)   # expired: the last holder may renew it, or another take it over
    won = [t for t in pool.imap(lambda lease: lease.hold(), contenders) if t is not None]
    assert len(won) == 1
    assert sum(1 for lease in contenders if lease.valid()) == 1


def test_a_renewal_and_a_takeover_of_an_expired_lease_cannot_both_succeed(leases):
    clocks = Clocks()
    a = replica(leases, clocks, "a")

    class Interleaved:
        """b's view of the collection: a renews between b's read and b's write."""
        def find_one(self, *args, **kwargs):
            doc = leases.find_one(*args, **kwargs)
            assert a.hold() == 1
            return doc

        def __getattr__(self, name):
            return getattr(leases, name)
    b = replica(Interleaved(), clocks, "b")
    assert a.hold() == 1
    clocks.advance(11)                 # expired; b reads it so, a renews, b tries to take it
    assert b.hold() is None and a.valid()
    assert leases.find_one({"_id": "outbox"})["holder"] == "a"


def test_a_holder_renewing_twice_at_once_keeps_its_lease(leases):
    """The duty's keeper and the duty itself may renew at the same moment:
    the renewal whose compare-and-set fails on the other's still holds, with
    the same token (under load this dropped the lease for a whole lease time)."""
    clocks = Clocks()

    class RenewedMeanwhile:
        """a's view of the collection: its other renewal lands between this
        renewal's read and its write."""
        armed = False

        def find_one(self, *args, **kwargs):
            doc = leases.find_one(*args, **kwargs)
            if self.armed:
                self.armed = False
                clocks.advance(1)
                assert a.hold() == 1
            return doc

        def __getattr__(self, name):
            return getattr(leases, name)
    view = RenewedMeanwhile()
    a = replica(view, clocks, "a")
    assert a.hold() == 1
    clocks.advance(3)
    view.armed = True
    assert a.hold() == 1 and a.valid()
    assert leases.find_one({"_id": "outbox"})["holder"] == "a"
