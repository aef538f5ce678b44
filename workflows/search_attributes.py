"""Custom search attributes: what operations staff filter on in the Web UI.

Never personal data: status, route, the council's code and name, the council's own case
reference, deadline names and dates, and flags only.
Registered by ``make run`` (``--search-attribute``) and by the test fixtures.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

REFERRAL_STATUS = SearchAttributeKey.for_keyword("ReferralStatus")
REFERRAL_ROUTE = SearchAttributeKey.for_keyword("ReferralRoute")
LOCAL_AUTHORITY = SearchAttributeKey.for_keyword("LocalAuthority")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
NEXT_DEADLINE_NAME = SearchAttributeKey.for_keyword("NextDeadlineName")
CERTIFICATE_ISSUED = SearchAttributeKey.for_bool("CertificateIssued")
DEADLINE_BREACHED = SearchAttributeKey.for_bool("DeadlineBreached")
DELIVERY_FAILED = SearchAttributeKey.for_bool("DeliveryFailed")
LOCAL_AUTHORITY_NAME = SearchAttributeKey.for_keyword("LocalAuthorityName")
BREACHED_DEADLINES = SearchAttributeKey.for_keyword_list("BreachedDeadlines")
LATEST_BREACH = SearchAttributeKey.for_datetime("LatestBreach")
EXTERNAL_REFERENCE = SearchAttributeKey.for_keyword("ExternalReference")

ALL: tuple[SearchAttributeKey[Any], ...] = (
    REFERRAL_STATUS,
    REFERRAL_ROUTE,
    LOCAL_AUTHORITY,
    NEXT_DEADLINE,
    NEXT_DEADLINE_NAME,
    CERTIFICATE_ISSUED,
    DEADLINE_BREACHED,
    DELIVERY_FAILED,
    LOCAL_AUTHORITY_NAME,
    BREACHED_DEADLINES,
    LATEST_BREACH,
    EXTERNAL_REFERENCE,
)


def initial(
    route: str,
    local_authority: str,
    council_name: str | None = None,
    external_reference: str | None = None,
) -> TypedSearchAttributes:
    """Set at start, so a new referral is findable before its first workflow task runs."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(REFERRAL_ROUTE, route),
        SearchAttributePair(LOCAL_AUTHORITY, local_authority),
        SearchAttributePair(REFERRAL_STATUS, "received"),
        SearchAttributePair(CERTIFICATE_ISSUED, False),
        SearchAttributePair(DEADLINE_BREACHED, False),
        SearchAttributePair(DELIVERY_FAILED, False),
    ]
    if council_name:
        pairs.append(SearchAttributePair(LOCAL_AUTHORITY_NAME, council_name))
    if external_reference:
        pairs.append(SearchAttributePair(EXTERNAL_REFERENCE, external_reference))
    return TypedSearchAttributes(pairs)


def cli_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        # INDEXED_VALUE_TYPE_KEYWORD_LIST -> KeywordList
        raw = key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")
        flags += ["--search-attribute", f"{key.name}={raw.title().replace('_', '')}"]
    return flags


async def ensure_registered(client: Client) -> list[str]:
    """Register any of our search attributes the namespace lacks; return the names added.

    ``start-dev --search-attribute`` only registers on a fresh store: a store created by an
    earlier version would miss attributes added since, so ``make run`` and the tests call this.
    """
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(key.indexed_value_type)
        for key in ALL
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
