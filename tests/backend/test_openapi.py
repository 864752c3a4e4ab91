"""The served OpenAPI document validates and documents every error as problem+json."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head"}


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def resolve(spec: dict, node: dict) -> dict:
    while "$ref" in node:
        section, kind, name = node["$ref"].removeprefix("#/").split("/")
        node = spec[section][kind][name]
    return node


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_spec_validates(spec):
    validate(spec)


def test_spec_lists_the_platform_endpoints(spec):
    for path in ["/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/auth/me",
                 "/api/v1/admin/users", "/api/v1/audit", "/api/v1/audit/verify"]:
        assert path in spec["paths"], path


def test_every_error_response_is_problem_json(spec):
    checked = 0
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if status != "default" and int(status) < 400:
                continue
            content = resolve(spec, response)["content"]
            assert list(content) == ["application/problem+json"], (path, method, status)
            schema = content["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}, (path, method, status)
            checked += 1
    assert checked > 0


def test_protected_operations_declare_bearer_auth_and_401(spec):
    me = spec["paths"]["/api/v1/auth/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert "401" in me["responses"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    admin_list = spec["paths"]["/api/v1/admin/users"]["get"]
    assert "403" in admin_list["responses"]
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert "security" not in login and {"401", "422", "429"} <= set(login["responses"])


def test_creating_posts_document_the_idempotency_key(spec):
    create_user = spec["paths"]["/api/v1/admin/users"]["post"]
    headers = [p["name"] for p in create_user.get("parameters", []) if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]


def test_request_bodies_reject_unknown_fields_in_the_contract(spec):
    login_schema = resolve(spec, spec["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]
                           ["application/json"]["schema"])
    assert login_schema.get("additionalProperties") is False
