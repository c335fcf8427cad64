"""Schemathesis over the service's own OpenAPI document, served by uvicorn on loopback,
with a valid token for every role (and none): no 5xx and no response that breaks the
documented schema."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.helpers import Api

SKIP = {("POST", "/auth/logout")}  # would revoke the tokens the run uses; tested on its own
# Schema-valid data may still be refused on business rules the schema cannot state
# (an unknown country, under 18, an email already taken): those 4xx are correct.
EXCLUDED = [positive_data_acceptance]

# uploads are raw bytes whatever the media type (the server sniffs them, not the header)
schemathesis.serializer.alias(["audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4", "audio/webm"],
                              "application/octet-stream")


def test_no_server_errors_and_responses_match_the_schema(served: str, api: Api) -> None:
    headers_by_role = [{}] + [api.user(role).h for role in ("client", "reader", "monitor", "admin", "superadmin")]
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    checked = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP:
            continue

        @given(case=op.as_strategy())
        @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            for headers in headers_by_role:
                case.call_and_validate(base_url=served, headers={**(case.headers or {}), **headers},
                                       excluded_checks=EXCLUDED)

        run()
        checked += 1
    assert checked >= 18
