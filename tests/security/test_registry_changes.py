"""Registries: every change is audited (who, when, what), and every field that reaches an
email header, a document or a link is validated (422 naming the field)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.keys import Scope, create_key
from tests.conftest import Stack
from tests.e2e.helpers import ok
from tests.factories import council_bodies


async def registry_admin(stack: Stack, name: str) -> tuple[str, httpx.AsyncClient]:
    key = await create_key(
        stack.db.sessionmaker,
        name=name,
        scopes=[Scope.REGISTRIES_WRITE.value, Scope.REFERRALS_READ.value, Scope.ADMIN.value],
    )
    http = httpx.AsyncClient(
        base_url=stack.base_url, timeout=30, headers={"Authorization": f"Bearer {key.token}"}
    )
    return key.key_id, http


async def test_registry_changes_are_audited_with_who_when_and_before_after_when_changed(
    stack: Stack,
) -> None:
    key_id, http = await registry_admin(stack, "provider-admin")
    started = datetime.now(UTC) - timedelta(seconds=1)
    provider, council = council_bodies()
    async with http:
        await ok(await http.post("/v1/providers", json=provider), 201)
        await ok(await http.post("/v1/local-authorities", json=council), 201)
        await ok(
            await http.patch(
                f"/v1/providers/{provider['id']}",
                json={"email": "new-contact@example.org", "name": provider["name"]},
            )
        )
        await ok(
            await http.patch(f"/v1/providers/{provider['id']}", json={"phone": "01234 567890"})
        )
        await ok(
            await http.patch(f"/v1/local-authorities/{council['code']}", json={"active": False})
        )
        mediator = await ok(
            await http.post("/v1/mediators", json={"name": "Audit Mediator", "send_trained": True}),
            201,
        )
        await ok(await http.delete(f"/v1/mediators/{mediator['id']}"))
        trail = await ok(await http.get(f"/v1/providers/{provider['id']}/changes"))
        council_trail = await ok(await http.get(f"/v1/local-authorities/{council['code']}/changes"))
        mediator_trail = await ok(await http.get(f"/v1/mediators/{mediator['id']}/changes"))
        page = await ok(await http.get(f"/v1/providers/{provider['id']}/changes?limit=1"))
        unknown = await http.get("/v1/venues/no-such-venue/changes")

    assert [c["action"] for c in trail["items"]] == ["created", "changed"]
    created, changed = trail["items"]
    assert created["changes"]["email"] == {"before": None, "after": "mediation@example.org"}
    # Only what really changed: the name was sent unchanged, the phone PATCH changed nothing.
    assert changed["changes"] == {
        "email": {"before": "mediation@example.org", "after": "new-contact@example.org"}
    }
    for entry in (created, changed):
        assert entry["actor"] == {"key_id": key_id, "name": "provider-admin"}
        assert datetime.fromisoformat(entry["recorded_at"]) >= started
    assert created["seq"] < changed["seq"]
    assert council_trail["items"][-1]["changes"] == {"active": {"before": True, "after": False}}
    assert [c["action"] for c in mediator_trail["items"]] == ["created", "deactivated"]
    assert page["next_after"] == created["seq"]
    assert len(page["items"]) == 1
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("providers", {"name": "X\r\nBcc: a@b.example"}, "body.name"),
        ("providers", {"email": "Kids <kids@example.org>"}, "body.email"),
        ("providers", {"email": "kids@localhost"}, "body.email"),
        ("providers", {"website": "http://kids.example.org"}, "body.website"),
        ("providers", {"website": "https://user:pass@kids.example.org"}, "body.website"),
        ("providers", {"office_hours": "9 to 5\nBcc: x"}, "body.office_hours"),
        ("mediators", {"email": "Mediator <m@example.org>"}, "body.email"),
        ("mediators", {"name": "Med\u202eiator"}, "body.name"),
        ("local-authorities", {"name": "Council\r\nX-Injected: 1"}, "body.name"),
    ],
)
async def test_a_registry_field_that_reaches_a_header_document_or_link_is_422_when_invalid(
    stack: Stack, path: str, body: dict[str, Any], field: str
) -> None:
    provider, council = council_bodies()
    await ok(await stack.http.post("/v1/providers", json=provider), 201)
    await ok(await stack.http.post("/v1/local-authorities", json=council), 201)
    mediator = await ok(
        await stack.http.post("/v1/mediators", json={"name": "Valid", "send_trained": True}), 201
    )
    target = {
        "providers": provider["id"],
        "mediators": mediator["id"],
        "local-authorities": council["code"],
    }[path]
    response = await stack.http.patch(f"/v1/{path}/{target}", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]
