"""Schemathesis against every running service, from the document it serves.

A county platform runs as `zhzx up` starts it. Each service's `/openapi.json`
is loaded into schemathesis, and every operation gets a bounded number of
generated requests, with the office's token and with a least-privileged one
(a citizen's). Required: no 5xx, and every answer conforms to the document
(status code, content type, body schema). Every failure of every operation is
collected and reported together.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error,
                                 response_schema_conformance, status_code_conformance)

from deploy.local import PLATFORMS, SERVICES
from tests.support import ROOT, free_shift

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# per operation: bounded, derandomized; ZHZX_FUZZ_SCALE=5 for a deeper local run
SCALE = int(os.environ.get("ZHZX_FUZZ_SCALE", "1"))
EXAMPLES = {"admin": 6 * SCALE, "citizen": 3 * SCALE}


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    shift = free_shift(3400)
    env = dict(os.environ, ZHZX_RUN_DIR=str(tmp_path_factory.mktemp("fuzz") / "run"),
               ZHZX_PORT_SHIFT=str(shift))

    def zhzx(*args, timeout=300):
        return subprocess.run([str(BIN / "zhzx"), *args], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)
    up = zhzx("up", "--platform", "county", "--no-demo", timeout=600)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        tokens = {role: zhzx("token", "--role", role).stdout.strip() for role in EXAMPLES}
        yield shift, tokens
    finally:
        zhzx("down", timeout=300)


def fuzz(operation, base_url, token, examples, statuses):
    """Failures of ``operation``'s generated cases (a list of strings); the
    status codes answered are counted in ``statuses``."""
    failures = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        try:
            response = case.call(base_url=base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:   # keep going: report every failure
            failures.append(f"{operation.label}: {str(exc).strip()[:600]}")
    run()
    return failures


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_server_error_and_every_answer_as_documented(county, service):
    shift, tokens = county
    base = f"http://127.0.0.1:{PLATFORMS['county']['http_base'] + SERVICES[service] + shift}"
    doc = requests.get(f"{base}/openapi.json", timeout=10).json()
    assert requests.get(f"{base}/docs", timeout=10).status_code == 200
    schema = schemathesis.openapi.from_dict(doc)
    failures, operations, statuses = [], 0, {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for role, examples in EXAMPLES.items():
            failures += [f"[{role}] {f}" for f in fuzz(operation, base, tokens[role], examples,
                                                      statuses)]
    assert operations >= (5 if service == "provincial" else 10)   # the document was read
    assert not failures, "\n\n".join(dict.fromkeys(failures))
    # some of the office's calls got through and some of the citizen's were refused
    assert statuses.get(200, 0) + statuses.get(201, 0) > 0 and statuses.get(403), statuses


def test_a_generated_python_client_creates_and_moves_a_proposal(county, tmp_path):
    """openapi-python-client generates a client from docs/openapi/proposals.json
    alone; it creates a unit and a collective proposal and moves the proposal
    from draft to registered and assigned."""
    shift, tokens = county
    out = tmp_path / "client"
    generated = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path",
         str(ROOT / "docs" / "openapi" / "proposals.json"), "--meta", "none",
         "--output-path", str(out / "zhzx_proposals")],
        capture_output=True, text=True, timeout=300)
    assert (out / "zhzx_proposals" / "client.py").exists(), generated.stdout + generated.stderr
    sys.path.insert(0, str(out))
    try:
        from zhzx_proposals import AuthenticatedClient
        from zhzx_proposals.api.proposals import (act_assign, act_classify, act_decide,
                                                  act_propose, act_submit, create)
        from zhzx_proposals.api.units import create_unit
        from zhzx_proposals.models import (Assign, Classify, Decide, Propose, ProposalIn,
                                           Submit, UnitIn)
    finally:
        sys.path.remove(str(out))
    base = f"http://127.0.0.1:{PLATFORMS['county']['http_base'] + SERVICES['proposals'] + shift}"
    client = AuthenticatedClient(base_url=base, token=tokens["admin"],
                                 raise_on_unexpected_status=True)
    unit = create_unit.sync(client=client, body=UnitIn.from_dict(
        {"id": "jyj-client", "name": "县教育局", "kind": "government", "topics": ["教育"]}))
    assert unit.id == "jyj-client"
    draft = create.sync(client=client, body=ProposalIn.from_dict({
        "kind": "collective", "title": "关于改善农村学校供暖的建议", "category": "livelihood",
        "collective": {"kind": "sector", "name": "教育界"}, "situation": "多所村小冬季室温不足",
        "analysis": "锅炉老化，运行经费不足", "suggestions": "更新供暖设备，纳入年度预算"}))
    assert draft.state == "draft"
    steps = [(act_submit, Submit.from_dict({})), (act_classify, Classify.from_dict({})),
             (act_propose, Propose.from_dict({"decision": "register"})),
             (act_decide, Decide.from_dict({})),
             (act_assign, Assign.from_dict({"lead_unit": "jyj-client"}))]
    states = []
    for step, body in steps:
        moved = step.sync(proposal_id=draft.id, client=client, body=body)
        assert hasattr(moved, "state"), (step.__name__, moved.to_dict(),
                                         getattr(moved, "errors", None))
        states.append(moved.state)
    assert states == ["submitted", "under_review", "under_review", "registered", "assigned"]
