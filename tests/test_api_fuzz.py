"""The merchant API fuzzed from its own OpenAPI document (schemathesis): whatever a client
sends, the answer is never a 5xx, and every response matches the document."""

from __future__ import annotations

import re

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import eventually
from tests.helpers import chat_message, new_shop


def refused_by_the_guard(response) -> bool:
    """The guard's refusals name where the problem is, before any authentication."""
    return response.status_code in (400, 413, 422) and bool(re.match(
        r"the (path|query string|request body)\b", response.json().get("detail", "")))


@pytest.fixture(scope="module")
async def fuzz_target(stack, producer, db):
    shop = await new_shop(producer, db)
    from shared.topics import CHAT_INBOUND

    message = chat_message(shop.shop_id)
    await producer.send_and_wait(CHAT_INBOUND, message)
    conversation_id = await eventually(lambda: db.fetchval(
        "SELECT conversation_id::text FROM conversations WHERE shop_id = $1", shop.shop_id))
    base = stack["gateway"].url
    async with httpx.AsyncClient() as client:
        document = (await client.get(f"{base}/api/v1/openapi.json")).json()
    return base, document, {"Authorization": f"Bearer {shop.tokens['ava']}"}, conversation_id


@pytest.mark.timeout(600)
def test_no_server_errors_whatever_the_request(fuzz_target):
    base, document, headers, conversation_id = fuzz_target
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    # A live event stream answers forever: it has tests of its own.
    operations = [op for op in operations if not op.path.endswith("/events")]
    seen: dict[int, int] = {}
    for operation in operations:

        @settings(max_examples=8, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), authorized=st.booleans(), real=st.booleans())
        def exercise(case, authorized, real):
            if real and "conversation_id" in (case.path_parameters or {}):
                case.path_parameters["conversation_id"] = conversation_id  # reach the body
            response = case.call(base_url=base, headers=headers if authorized else {},
                                 timeout=10)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}"
            )
            signing_in = case.operation.path.startswith("/api/v1/session")  # no credentials
            if not authorized and not signing_in:
                # A 401, unless the request guard refused its form first.
                assert response.status_code == 401 or refused_by_the_guard(response), (
                    response.status_code, response.text[:300])

        exercise()
    assert sum(seen.values()) > 100 and not any(code >= 500 for code in seen)
    print(f"fuzzed {len(operations)} operations with {sum(seen.values())} requests: {seen}")
