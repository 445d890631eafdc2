"""Dynamic client registration (RFC 7591) and its management (RFC 7592).

``POST /oauth/register`` (:mod:`.register`)
    Registers a vendor. Open only to holders of an initial access token the
    operator issued (``vrm vendors initial-token``).
``GET | PUT | DELETE /oauth/register/{client_id}`` (:mod:`.management`)
    The ``registration_client_uri``: read, replace or delete the
    registration, with the registration access token issued with it.

What a vendor may register is decided by
:func:`~consent.vendors.metadata.check_metadata`, the same rules as for
``vrm vendors add`` (https redirect URIs, plain http only on loopback, no
fragments; OAUTH.md item 24); :mod:`.client_metadata` reads the JSON
members into it. Authlib's ``ClientMetadataClaims`` checks only URL syntax,
so it is not used; its ``ClientRegistrationEndpoint`` drives the
registration itself.

Both tokens are checked by dependencies (:mod:`.bearer`) before the body is
read; every failure is the same 401 with a ``Bearer`` challenge (RFC 6750
section 3.1), so a token used on another client's, an unknown, a deleted or
an operator-registered client's URI tells nothing. Errors about the
metadata use the RFC 7591 section 3.2.2 JSON format (:mod:`.requests`).

Choices where the RFCs leave room:

- ``client_id`` and ``client_secret`` are always the server's (RFC 9700
  section 4.15); values sent by the client are ignored.
- Members we do not use are ignored (RFC 7591 section 2) and left out of
  the response; ``jwks_uri`` is refused, as this server fetches nothing.
- ``client_name`` is required: customers see it when they consent.
- ``grant_types`` defaults to ``["authorization_code"]`` and
  ``response_types`` can only be ``["code"]`` (RFC 7591 section 2).
- PUT replaces the metadata and keeps the credentials; it refuses a move
  between a client secret and ``private_key_jwt``
  (:func:`~consent.vendors.service.update_registration`). The registration
  access token is not rotated.
- DELETE disables the vendor: its tokens stop working at once.
"""

from fastapi import APIRouter

from consent.registration import management, register

router = APIRouter(include_in_schema=False)
router.include_router(register.router)
router.include_router(management.router)
