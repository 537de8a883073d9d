"""Schemathesis fuzz run of the OpenAPI schema against a real uvicorn server: no 5xx, ever, and
no stack trace or internal path in any body. Runs on a private registry because it calls the
admin endpoints (promote, rollback, traffic) with an admin token."""

from __future__ import annotations

import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings as hyp_settings  # noqa: E402

from tests.serving.conftest import Built, auth, client_for  # noqa: E402
from tests.serving.test_failures import own_registry  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("VFR_FUZZ_EXAMPLES", "15"))


@pytest.fixture(scope="module")
def fuzz_server(built: Built, tmp_path_factory: pytest.TempPathFactory):
    settings, _, _ = own_registry(built, tmp_path_factory.mktemp("fuzz"), n=2)
    with client_for(settings) as client:
        yield str(client.base_url), auth(settings, "admin", "fuzzer")


def test_no_server_errors_and_no_leaks(fuzz_server) -> None:
    from hypothesis import given

    base_url, headers = fuzz_server
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures: list[str] = []
    calls: list[int] = []
    for op in operations:

        @given(case=op.as_strategy())
        @hyp_settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
        def run(case) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=60)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}")
            for needle in ("Traceback", "site-packages", "/tmp/", "/work/"):
                if needle in response.text:
                    failures.append(f"{case.method} {case.formatted_path} leaks {needle!r}: {response.text[:300]}")

        run()
    assert not failures, "\n".join(failures[:20])
    assert len(calls) >= 3 * len(operations) and any(c == 200 for c in calls) and any(c == 422 for c in calls)
