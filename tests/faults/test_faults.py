"""Faults injected into a running county + city pair under a write load:
after each, every write answered 2xx exists, every linked item arrived at the
city once, records equal their rebuild, rosters roll up, no dead letter is
left, and every service is ready again within a stated bound.

The pair is started once for the module by `zhzx up --pair` (supervised) on
ports and in a run directory of its own; the faults follow one another on it.
`make soak` runs the same faults at random for ZHZX_SOAK_SECONDS (default 600).
"""
import os
import random
import time

import pytest

from tests.faults.harness import FAULTS, run_fault, started_pair

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with started_pair(tmp_path_factory.mktemp("faults") / "run") as pair:
        yield pair


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault(pair, fault):
    run_fault(pair, fault)


@pytest.mark.skipif(not os.environ.get("ZHZX_SOAK_SECONDS"),
                    reason="the soak runs with `make soak` (ZHZX_SOAK_SECONDS)")
@pytest.mark.timeout(int(float(os.environ.get("ZHZX_SOAK_SECONDS") or 0)) + 900)
def test_soak(pair):
    """Random faults, one after another, for ZHZX_SOAK_SECONDS (bounded)."""
    seconds = float(os.environ["ZHZX_SOAK_SECONDS"])
    rng = random.Random(int(os.environ.get("ZHZX_SOAK_SEED", "19")))
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline and rounds < 200:
        run_fault(pair, rng.choice(list(FAULTS)))
        rounds += 1
    assert rounds > 0
