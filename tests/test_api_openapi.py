"""The OpenAPI document served at /api/v1/openapi.json describes the whole merchant API:
every endpoint, its answers (errors included), the bearer scheme and the tags."""

from __future__ import annotations

import importlib
import pkgutil

import httpx
from fastapi.routing import APIRoute, APIRouter

from services.gateway import api

ENDPOINTS = {
    ("get", "/api/v1/conversations"),
    ("get", "/api/v1/conversations/{conversation_id}"),
    ("delete", "/api/v1/conversations/{conversation_id}"),
    ("post", "/api/v1/conversations/{conversation_id}/replies"),
    ("post", "/api/v1/conversations/{conversation_id}/assign"),
    ("post", "/api/v1/conversations/{conversation_id}/unassign"),
    ("post", "/api/v1/conversations/{conversation_id}/status"),
    ("post", "/api/v1/conversations/{conversation_id}/mark-unread"),
    ("put", "/api/v1/conversations/{conversation_id}/subject"),
    ("post", "/api/v1/conversations/{conversation_id}/notes"),
    ("post", "/api/v1/conversations/{conversation_id}/turn-off-order-updates"),
    ("post", "/api/v1/conversations/{conversation_id}/block"),
    ("post", "/api/v1/conversations/{conversation_id}/unblock"),
    ("get", "/api/v1/staff/assignable"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/saved-replies"),
    ("post", "/api/v1/saved-replies"),
    ("get", "/api/v1/saved-replies/{saved_reply_id}"),
    ("put", "/api/v1/saved-replies/{saved_reply_id}"),
    ("delete", "/api/v1/saved-replies/{saved_reply_id}"),
    ("get", "/api/v1/saved-replies/{saved_reply_id}/preview"),
    ("get", "/api/v1/products"),
    ("get", "/api/v1/discounts"),
    ("get", "/api/v1/channels/messenger"),
    ("put", "/api/v1/channels/messenger"),
    ("delete", "/api/v1/channels/messenger"),
    ("get", "/api/v1/channels/messenger/orders/{order_id}"),
    ("post", "/api/v1/session"),
    ("get", "/api/v1/session"),
    ("delete", "/api/v1/session"),
    ("post", "/api/v1/session/link"),
    ("post", "/api/v1/session/link/redeem"),
    ("get", "/api/v1/privacy/requests"),
    ("get", "/api/v1/privacy/requests/{data_request_id}/export"),
    ("post", "/api/v1/privacy/customers/redact"),
    ("get", "/api/v1/settings/assignment"),
    ("put", "/api/v1/settings/assignment"),
    ("get", "/api/v1/me/availability"),
    ("put", "/api/v1/me/availability"),
    ("get", "/api/v1/reports/conversations"),
    ("get", "/api/v1/settings/availability"),
    ("put", "/api/v1/settings/availability"),
    ("get", "/api/v1/settings/instant-answers"),
    ("put", "/api/v1/settings/instant-answers/{topic}"),
}
#: Signing in needs no credentials (it makes them).
SIGN_IN = {key for key in ENDPOINTS if key[1].startswith("/api/v1/session")}

ERRORS = {
    ("delete", "/api/v1/conversations/{conversation_id}"): {"401", "405"},
    ("get", "/api/v1/conversations/{conversation_id}"): {"401", "404"},
    ("post", "/api/v1/conversations/{conversation_id}/replies"): {"401", "404", "422"},
    ("post", "/api/v1/conversations/{conversation_id}/assign"): {"401", "404", "422"},
    ("put", "/api/v1/conversations/{conversation_id}/subject"): {"401", "403", "404", "422"},
    ("post", "/api/v1/saved-replies"): {"401", "409", "422"},
    ("put", "/api/v1/saved-replies/{saved_reply_id}"): {"401", "404", "409", "422"},
    ("delete", "/api/v1/saved-replies/{saved_reply_id}"): {"401", "404"},
    ("put", "/api/v1/channels/messenger"): {"401", "403", "409", "422"},
    ("delete", "/api/v1/channels/messenger"): {"401", "403", "404"},
    ("get", "/api/v1/channels/messenger/orders/{order_id}"): {"401", "404"},
    ("post", "/api/v1/session"): {"401", "409", "422", "429"},
    ("post", "/api/v1/session/link"): {"422", "429", "503"},
    ("post", "/api/v1/session/link/redeem"): {"401", "422"},
    ("get", "/api/v1/privacy/requests"): {"401", "403"},
    ("get", "/api/v1/privacy/requests/{data_request_id}/export"): {"401", "403", "404"},
    ("post", "/api/v1/privacy/customers/redact"): {"401", "403", "422", "503"},
    ("put", "/api/v1/settings/assignment"): {"401", "403", "422"},
    ("put", "/api/v1/me/availability"): {"401", "403", "422"},
    ("get", "/api/v1/reports/conversations"): {"401", "422"},
    ("put", "/api/v1/settings/availability"): {"401", "403", "422"},
    ("put", "/api/v1/settings/instant-answers/{topic}"): {"401", "403", "404", "422"},
}


async def test_the_openapi_document_describes_every_endpoint(stack):
    async with httpx.AsyncClient(base_url=stack["gateway"].url) as anonymous:
        response = await anonymous.get("/api/v1/openapi.json")
        assert response.status_code == 200
        document = response.json()
        assert (await anonymous.get("/api/v1/docs")).status_code == 200

    assert document["openapi"].startswith("3.")
    operations = {
        (method, path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == ENDPOINTS
    # Nothing any part of the API declares is left out of the document.
    declared = set()
    for part in pkgutil.iter_modules(api.__path__):
        router = getattr(importlib.import_module(f"{api.__name__}.{part.name}"), "router", None)
        if isinstance(router, APIRouter):
            declared |= {
                (method.lower(), "/api/v1" + route.path)
                for route in router.routes
                if isinstance(route, APIRoute)
                for method in route.methods
            }
    assert declared == ENDPOINTS

    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "staffToken": {"type": "http", "scheme": "bearer",
                       "description": schemes["staffToken"]["description"]},
        "staffSession": {"type": "apiKey", "in": "cookie", "name": "inbox_session",
                         "description": schemes["staffSession"]["description"]},
    }
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string"
    assert "HTTPValidationError" not in schemas
    tags = {t["name"] for t in document["tags"]}
    assert tags == {"conversations", "conversation commands", "staff", "saved replies", "catalog",
                    "channels", "sign-in", "privacy", "assignment", "automation",
                    "reports"}

    for key, operation in operations.items():
        if key in SIGN_IN:
            assert "security" not in operation and operation["tags"] == ["sign-in"], key
        else:  # a token, or the inbox's session cookie
            assert operation["security"] == [{"staffToken": []}, {"staffSession": []}], key
        assert operation["tags"] and set(operation["tags"]) <= tags, key
        assert operation["summary"], key
        assert operation["operationId"].isidentifier(), key
        responses = operation["responses"]
        for code in ERRORS.get(key, {"401"}):
            assert code in responses, (key, code)
        for code, answer in responses.items():
            if code.startswith("4") or code == "503":
                schema = answer["content"]["application/json"]["schema"]
                body = "ShopChoice" if key == ("post", "/api/v1/session") and code == "409" \
                    else "ErrorBody"
                assert schema == {"$ref": f"#/components/schemas/{body}"}, (key, code)
        successes = [c for c in responses if c.startswith("2")]
        if key == ("delete", "/api/v1/conversations/{conversation_id}"):
            assert successes == []  # never succeeds: close the conversation instead
        elif key in {("delete", "/api/v1/saved-replies/{saved_reply_id}"),
                     ("delete", "/api/v1/session")}:
            assert successes == ["204"]
        elif key == ("get", "/api/v1/privacy/requests/{data_request_id}/export"):
            assert successes == ["200"]  # the export itself, as stored
        else:
            [success] = successes
            assert "$ref" in responses[success]["content"]["application/json"]["schema"], key
    for key in ENDPOINTS:
        if key[1].startswith("/api/v1/conversations/{conversation_id}/") and key[0] != "get":
            assert "202" in operations[key]["responses"], key
            assert operations[key]["responses"]["202"]["content"]["application/json"][
                "schema"] == {"$ref": "#/components/schemas/Accepted"}

    row = schemas["ConversationRow"]["properties"]
    assert {"conversation_id", "channel", "status", "customer", "online", "topics", "unread",
            "assignee", "last_message_at", "last_message_preview", "cart"} <= set(row)
    one = schemas["ConversationDetail"]["properties"]
    assert {"thread_ref", "subject", "timeline", "cart", "customer"} <= set(one)
    profile = schemas["CustomerProfile"]["properties"]
    assert {"kind", "location", "timezone", "locale", "recent_orders", "notes"} <= set(profile)
