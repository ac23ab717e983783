"""Every event type the code can emit is in the AsyncAPI catalogue."""
import re

import yaml

from services.proposals import domain
from tests.support import ROOT


def emitted_types():
    types = set()
    for path in (ROOT / "services").glob("*/*.py"):
        types.update(re.findall(r'"((?:member|meeting|proposal|unit|station|request|consultation|opinion|task|statistics)\.[a-z_]+)"', path.read_text()))
    types.update(f"proposal.{state}" for state in domain.DECISIONS.values())
    return types


def test_asyncapi_lists_every_emitted_event_type():
    channels = set(yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())["channels"])
    types = emitted_types()
    assert len(types) > 70
    assert types <= channels, sorted(types - channels)
