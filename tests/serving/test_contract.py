"""Contract test: the OpenAPI schema says what the app really answers. Schemathesis generates
requests from the schema for the open routes (stocks, earnings, health) and checks every answer
of a real uvicorn server against it: no 5xx, every status documented, the documented content
type, and the body valid against the documented schema of its status (422 and other errors
included). Also: open routes carry no security requirement, member routes a required one."""

from __future__ import annotations

import os
import time

import httpx
import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hyp_settings  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = int(os.environ.get("VFR_CONTRACT_EXAMPLES", "20"))
OPEN = ("/api/stocks/", "/api/earnings/", "/api/health")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_open_routes_answer_as_documented(shared_api: httpx.Client) -> None:
    base_url = str(shared_api.base_url)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.path.startswith(OPEN)]
    assert {op.path for op in operations} == {"/api/stocks/select", "/api/stocks/analyze", "/api/earnings/signals",
                                              "/api/health"}
    failures: list[str] = []
    statuses: list[int] = []
    started = time.monotonic()
    for op in operations:

        @given(case=op.as_strategy())
        @hyp_settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
        def run(case) -> None:
            response = case.call(base_url=base_url, timeout=60)
            statuses.append(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:  # noqa: BLE001 - collected: one report of every violation
                failures.append(f"{case.method} {case.formatted_path} {case.query or ''} -> "
                                f"{response.status_code}: {str(exc)[:600]}")

        run()
    assert not failures, "\n\n".join(failures[:10])
    assert 200 in statuses and 422 in statuses
    assert time.monotonic() - started < 60


def test_security_requirements_match_the_routes(shared_api: httpx.Client) -> None:
    spec = shared_api.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in (("/api/stocks/select", "get"), ("/api/stocks/select", "post"), ("/api/stocks/analyze", "get"),
                         ("/api/earnings/signals", "get")):
        assert paths[path][method]["security"] == [{}, {"HTTPBearer": []}], path  # a token is optional
        assert shared_api.request(method.upper(), path, params={"symbols": "AAPL"},
                                  json={} if method == "post" else None).status_code == 200
    assert "security" not in paths["/api/health"]["get"]
    assert paths["/api/ml/predict"]["post"]["security"] == [{"HTTPBearer": []}]
    assert shared_api.post("/api/ml/predict", json={"symbols": ["AAPL"]}).status_code == 401
    # every error status the app can answer is documented with the body it really has
    select = paths["/api/stocks/select"]["post"]["responses"]
    assert {"400", "401", "404", "413", "422", "429", "500", "503"} <= set(select)
    assert select["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationErrorBody")
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    bad = shared_api.get("/api/stocks/select", params={"top": 0}).json()
    assert bad["error"] == "validation_error" and set(bad["detail"][0]) == {"field", "message"}
