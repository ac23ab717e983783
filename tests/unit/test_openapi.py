"""The OpenAPI documents: generated from the @api declarations, valid, current."""
import pytest
from openapi_spec_validator import validate

from services import openapi
from services.common.openapi import entrypoints
from services.common.service import service_document


@pytest.mark.parametrize("cls", openapi.service_classes(), ids=lambda c: c.name)
def test_every_operation_is_declared_and_the_document_is_valid_openapi_3_1(cls):
    for entry in entrypoints(cls):
        if entry.hidden:
            continue
        assert entry.summary, f"{cls.name}.{entry.method_name}: summary"
        assert entry.query is not None, f"{cls.name}.{entry.method_name}: query"
    doc = service_document(cls)
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    ops = [op for path in doc["paths"].values() for op in path.values()]
    assert all("422" in op["responses"] for op in ops)
    created = doc["paths"].get("/api/v1/proposals", {}).get("post")
    if created:   # roles, body and the problem answers are in the document
        assert created["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert "201" in created["responses"] and "403" in created["responses"]


def test_actions_are_one_operation_each_with_their_own_body():
    doc = service_document(openapi.service_classes()[1])
    submit = doc["paths"]["/api/v1/proposals/{proposal_id}/actions/submit"]["post"]
    answer = doc["paths"]["/api/v1/proposals/{proposal_id}/actions/answer"]["post"]
    assert submit["operationId"] == "act_submit"
    schemas = doc["components"]["schemas"]
    ref = answer["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert set(schemas[ref.rsplit("/", 1)[1]]["required"]) == {"category", "text"}


def test_the_committed_documents_are_what_the_code_generates():
    assert openapi.main(["--check"]) == 0, "run: python -m services.openapi"
