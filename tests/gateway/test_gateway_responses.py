"""Answers serialised once (gateway.responses.ModelResponse) are byte for byte what FastAPI writes
for the route's response_model, and GET /orgs/{code} keeps its documented shape, scope and
request ids."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from gateway.middleware import RequestIds
from gateway.responses import ModelResponse
from gateway.schemas.common import OrgRef
from gateway.schemas.orgs import OrgDetailRead
from gateway_harness import Api
from gateway_world import HOME, PARENT, SIBLING, World

MODEL = OrgDetailRead(
    org_code="1113010201", name="华阳小学", level="school", parent_code="130102",
    org_path="/000000/130000/130100/130102/1113010201/", region_code="130102",
    stages=["primary"], school_category="小学", status="active", child_count=0,
    created_at=datetime(2024, 9, 1, 8, 30, 0, 123000, tzinfo=UTC), updated_at=None,
    retired_at=None, version=3,
    ancestors=[OrgRef(org_code="000000", name="全国", level="national", org_path="/000000/")],
)  # fmt: skip


def test_model_response_is_what_fastapi_writes_for_the_response_model() -> None:
    app = FastAPI()

    @app.get("/fastapi", response_model=OrgDetailRead)
    async def by_fastapi() -> OrgDetailRead:
        return MODEL

    @app.get("/once", response_model=OrgDetailRead)
    async def once() -> ModelResponse:
        return ModelResponse(MODEL)

    with TestClient(app) as client:
        expected, got = client.get("/fastapi"), client.get("/once")
    assert got.status_code == 200
    assert got.content == expected.content
    assert got.headers["content-type"] == expected.headers["content-type"]
    assert got.headers["content-length"] == str(len(got.content))


def test_request_ids_are_unique_and_32_hex_digits() -> None:
    ids = RequestIds()
    made = {ids.next() for _ in range(1000)}
    assert len(made) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in made)
    assert RequestIds().next()[:16] != ids.next()[:16]  # another process, another prefix


def test_get_org_answers_the_documented_shape_in_scope_only(api: Api, world: World) -> None:
    county = world.admins["county"]
    school = HOME["school"]
    resp = api.request("GET", f"/orgs/{school}", county, headers={"X-Request-ID": "rid-org-1"})
    assert resp.status_code == 200 and resp.headers["x-request-id"] == "rid-org-1"
    assert "server" not in resp.headers
    body = resp.json()
    assert OrgDetailRead.model_validate(body).org_code == school
    assert body["parent_code"] == PARENT[school]
    assert [a["org_code"] for a in body["ancestors"]][-1] == PARENT[school]
    assert body["org_path"].startswith(body["ancestors"][-1]["org_path"])
    again = api.request("GET", f"/orgs/{school}", county)
    assert again.json() == body and again.headers["x-request-id"] != "rid-org-1"

    outside = api.request("GET", f"/orgs/{SIBLING['county']}", county)
    assert outside.status_code == 404
    assert outside.json()["error"]["code"] in {"NOT_FOUND", "ORG_NOT_FOUND"}
