"""Registries: ``/v1/mediators``, ``/v1/venues``, ``/v1/local-authorities``, ``/v1/providers``.

Create (POST, with ``Idempotency-Key``), list, get and update (PATCH) each; mediators and
venues are deactivated by DELETE (``active`` = false), never removed, since bookings refer
to them; a council is deactivated by PATCH ``{"active": false}``. Bookings draw on the
mediator and venue registries (SEND training, conflicts of interest, availability,
neutral venues); a referral takes its council's provider and that provider's service levels.

Registries serve every council (one provider, mediator or venue works for several), so only
keys for all councils may change them (``api.keys.COUNCIL_WIDE_SCOPES``). Every change is
audited: ``GET /v1/{registry}/{id}/changes`` lists who (key id and client name), when, and
each field before and after. Every field that reaches an email header, a document or a link
is validated here: one-line text without control characters, bare email addresses, https
links without credentials.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.routes.registries import councils, mediators, venues
from api.routes.registries.common import CHANGES, register_changes

router = APIRouter()
router.include_router(mediators.router)
router.include_router(venues.router)
router.include_router(councils.router)
for _model, _tag, _what in CHANGES:
    register_changes(router, _model, _tag, _what)
