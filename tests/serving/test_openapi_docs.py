"""The OpenAPI document (``/openapi.json``, what ``/docs`` and ``/redoc`` show) describes every
field, parameter and error: each schema property and each parameter has a description and an
example, each example is valid against its own schema, and each operation lists the 4xx/5xx
statuses it can answer with a description and an example body of the shape the app really sends.

The app is built without a market store (the document needs none) and served by a real uvicorn
server, like the other API tests; a few error answers are produced for real to compare with their
examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import SECRET, running
from vfr.config import Settings
from vfr.serving import create_app

jsonschema = pytest.importorskip("jsonschema")

_REF = "#/components/schemas/"
BODY_LIMIT = 2048
#: Statuses every operation documents (the body limit and the internal-error handler apply to all).
ALWAYS = {"413", "500"}
ERROR_CODES = {"400": "bad_request", "401": "unauthorized", "403": "forbidden", "404": "not_found",
               "409": "conflict", "413": "payload_too_large", "422": "validation_error", "429": "rate_limited",
               "500": "internal_error", "503": ("store_unavailable", "ml_unavailable")}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The API without a market store (no data route is called), on a real uvicorn server."""
    home: Path = tmp_path_factory.mktemp("openapi-home")
    # a small body limit, so that the 413 below is answered after a body that fits in the socket
    # buffers (a large one is cut off while the client still sends it: a reset, not an answer)
    app = create_app(Settings(home=home, jwt_secret=SECRET, api_max_body_bytes=BODY_LIMIT))
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def spec(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def properties(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(``Schema.property[.nested...]``, property schema) of every property of every component
    schema, inline object schemas (in ``anyOf``, ``items``, ...) included; ``$ref``s are not
    followed (each referenced schema is a component of its own, walked once)."""

    def walk(where: str, schema: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        if not isinstance(schema, dict):
            return
        for name, prop in schema.get("properties", {}).items():
            yield f"{where}.{name}", prop
            yield from walk(f"{where}.{name}", prop)
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for i, sub in enumerate(schema.get(key, [])):
                yield from walk(f"{where}[{i}]", sub)
        for key in ("items", "additionalProperties"):
            yield from walk(f"{where}[]", schema.get(key))

    for name, schema in spec["components"]["schemas"].items():
        yield from walk(name, schema)


def examples_of(item: dict[str, Any]) -> list[Any]:
    """The examples of a schema, parameter or media type (``example``, ``examples`` as a list or,
    for parameters and media types, as a map of Example Objects)."""
    out = [item["example"]] if "example" in item else []
    found = item.get("examples")
    if isinstance(found, list):
        out += found
    elif isinstance(found, dict):
        out += [e["value"] for e in found.values() if "value" in e]
    return out


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator of ``schema`` whose ``#/components/schemas/...`` refs resolve
    in ``spec`` (formats such as ``date`` are checked too)."""
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "components": spec["components"],
            "allOf": [schema]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def test_the_document_is_served_with_the_docs(client: httpx.Client, spec: dict[str, Any]) -> None:
    assert client.get("/docs").status_code == 200 and client.get("/redoc").status_code == 200
    assert len(list(operations(spec))) >= 18 and len(spec["components"]["schemas"]) >= 40


def test_every_property_has_a_description_and_an_example(spec: dict[str, Any]) -> None:
    missing = []
    count = 0
    for where, prop in properties(spec):
        count += 1
        if not str(prop.get("description", "")).strip():
            missing.append(f"{where}: no description")
        if not examples_of(prop):
            missing.append(f"{where}: no example")
    assert count >= 250, count
    assert not missing, "\n".join(missing)


def test_every_parameter_has_a_description_and_an_example(spec: dict[str, Any]) -> None:
    missing = []
    count = 0
    for path, method, op in operations(spec):
        for p in op.get("parameters", []):
            count += 1
            where = f"{method.upper()} {path} {p['in']} {p['name']}"
            if not str(p.get("description") or p.get("schema", {}).get("description") or "").strip():
                missing.append(f"{where}: no description")
            if not (examples_of(p) or examples_of(p.get("schema", {}))):
                missing.append(f"{where}: no example")
    assert count >= 20, count
    assert not missing, "\n".join(missing)


def test_every_example_is_valid_against_its_schema(spec: dict[str, Any]) -> None:
    errors = []
    checked = 0

    def check(where: str, schema: dict[str, Any], examples: list[Any]) -> None:
        nonlocal checked
        v = validator(spec, schema)
        for example in examples:
            checked += 1
            for e in v.iter_errors(example):
                errors.append(f"{where}: {example!r:.120} -> {e.message[:200]}")

    for where, prop in properties(spec):
        check(where, prop, examples_of(prop))
    for path, method, op in operations(spec):
        for p in op.get("parameters", []):
            schema = p.get("schema", {})
            check(f"{method.upper()} {path} {p['name']}", schema, examples_of(p) + examples_of(schema))
        for status, answer in op["responses"].items():
            for media_type, media in answer.get("content", {}).items():
                if "schema" in media:
                    check(f"{method.upper()} {path} {status} {media_type}", media["schema"], examples_of(media))
    assert checked >= 300, checked
    assert not errors, "\n".join(errors[:40])


def test_every_operation_documents_its_errors(spec: dict[str, Any]) -> None:
    problems = []
    for path, method, op in operations(spec):
        where = f"{method.upper()} {path}"
        responses = op["responses"]
        errors = {s: r for s, r in responses.items() if s[0] in "45"}
        if not ALWAYS <= set(errors):
            problems.append(f"{where}: missing {sorted(ALWAYS - set(errors))}")
        if (op.get("parameters") or op.get("requestBody")) and "422" not in errors:
            problems.append(f"{where}: takes input but documents no 422")
        if op.get("requestBody") and "400" not in errors:
            problems.append(f"{where}: takes a body but documents no 400")
        if op.get("security") and not {"401", "429"} <= set(errors):
            problems.append(f"{where}: has a security requirement but documents no 401/429")
        if op.get("security") == [{"HTTPBearer": []}] and "403" not in errors:
            problems.append(f"{where}: needs a token but documents no 403")
        for status, answer in errors.items():
            description = str(answer.get("description", "")).strip()
            if not description or description == "Additional Response":
                problems.append(f"{where} {status}: no description")
            media = answer.get("content", {}).get("application/json")
            if media is None or "schema" not in media:
                problems.append(f"{where} {status}: no JSON body schema")
                continue
            ref = media["schema"].get("$ref", "")
            if path == "/api/health" and status == "503":
                assert ref == _REF + "Health"
            else:
                assert ref == _REF + ("ValidationErrorBody" if status == "422" else "ErrorBody"), (where, status)
            examples = examples_of(media)
            if not examples:
                problems.append(f"{where} {status}: no example body")
            for example in examples:
                if ref.endswith("Health"):
                    assert example["status"] == "degraded"
                    continue
                codes = ERROR_CODES[status]
                if example["error"] not in (codes if isinstance(codes, tuple) else (codes,)):
                    problems.append(f"{where} {status}: example error code {example['error']!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("path", "method", "expected", "absent"), [
    ("/api/stocks/select", "get", {"401", "404", "422", "429", "503"}, {"403", "409"}),
    ("/api/stocks/select", "post", {"400", "401", "404", "422", "429", "503"}, {"403", "409"}),
    ("/api/earnings/signals", "get", {"401", "404", "422", "429", "503"}, {"403", "409"}),
    ("/api/ml/predict", "post", {"400", "401", "403", "404", "422", "429", "503"}, {"409"}),
    ("/api/ml/models", "get", {"401", "403", "429", "503"}, {"404", "409", "422"}),
    ("/api/ml/models/{name}/promote", "post", {"400", "401", "403", "404", "409", "422", "429", "503"}, set()),
    ("/api/ml/retraining/trigger", "post", {"401", "403", "409", "429", "503"}, {"404"}),
    ("/api/ml/model/info", "get", {"401", "403", "404", "409", "429", "503"}, {"422"}),
    ("/api/health", "get", {"503"}, {"401", "422", "429"}),
])
def test_each_route_lists_the_statuses_its_code_answers(spec: dict[str, Any], path: str, method: str,
                                                        expected: set[str], absent: set[str]) -> None:
    documented = set(spec["paths"][path][method]["responses"])
    assert expected <= documented, sorted(expected - documented)
    assert not absent & documented, sorted(absent & documented)


def test_real_error_answers_have_the_documented_shape(client: httpx.Client, spec: dict[str, Any]) -> None:
    """A 401, a 422 and a 413 produced by the app (no store needed) validate against the schema of
    their documented response and carry the example's error code."""
    answers = [
        ("/api/ml/models", "get", client.get("/api/ml/models")),
        ("/api/stocks/select", "get", client.get("/api/stocks/select", params={"top": 0})),
        ("/api/stocks/select", "post", client.post("/api/stocks/select", content=b"x" * (2 * BODY_LIMIT),
                                                   headers={"Content-Type": "application/json"})),
    ]
    for path, method, r in answers:
        status = str(r.status_code)
        assert status in ("401", "422", "413"), (path, status, r.text[:200])
        media = spec["paths"][path][method]["responses"][status]["content"]["application/json"]
        body = r.json()
        errors = [e.message for e in validator(spec, media["schema"]).iter_errors(body)]
        assert not errors, (path, status, errors)
        assert body["error"] == examples_of(media)[0]["error"]
