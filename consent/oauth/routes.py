"""The authorization server's routes, one module of one concern each:
discovery (metadata and JWKS), userinfo, the authorization endpoint with
its consent page, and the device page (RFC 8628). The token, revocation,
introspection and device authorization endpoints are the lean app of
consent/oauth/endpoints.py, routed from the table of vrm/lean.py; dynamic
registration is consent/registration/.

Protocol errors follow the OAuth specs (JSON ``{"error": ...}``; at the
authorization endpoint a redirect or an HTML page): a client library
expects exactly those shapes.
"""

from __future__ import annotations

from fastapi import APIRouter

from consent.oauth import authorize, device_page, discovery, userinfo_endpoint

router = APIRouter()
# In this order, as before the split (the OpenAPI fragment lists them so).
for part in (discovery, userinfo_endpoint, authorize, device_page):
    router.include_router(part.router)
