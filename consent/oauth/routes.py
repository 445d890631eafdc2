"""OAuth endpoints: metadata, authorize (with the consent page), token,
revocation, introspection.

Protocol errors follow the OAuth specs (JSON ``{"error": ...}`` at the token,
revocation and introspection endpoints; a redirect carrying ``error``,
``state`` and ``iss`` from the authorization endpoint when the client and
redirect URI are known, an HTML page otherwise): a client library expects
exactly those shapes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from consent.grants import service as grants
from consent.oauth import keys, tokens
from consent.oauth.authentication import Login, current_login, must_log_in, prompts, to_login
from consent.oauth.client_auth import ASSERTION_ALGS, TOKEN_AUTH_METHODS
from consent.oauth.consent_form import ConsentForm, read_consent
from consent.oauth.endpoints import PATHS, vendor_endpoint
from consent.oauth.requests import Decision
from consent.oauth.requests import Request as OAuthRequest
from consent.oauth.server import Server
from consent.oauth.userinfo import CLAIMS
from consent.oauth.userinfo import userinfo as user_claims
from consent.pages import (
    FormError,
    PageFormDep,
    csrf_ok,
    csrf_token,
    form_fields,
    render,
)
from consent.scopes import (
    OPENID,
    PURPOSES,
    VENDOR_SCOPES,
    all_scopes,
)
from vrm.db import SessionDep
from vrm.dbtypes import utcnow
from vrm.deps import SessionTokenDep, SettingsDep, VaultDep
from vrm.settings import Settings
from vrm.storage.transaction import SessionTransaction

router = APIRouter(include_in_schema=False)

_DURATIONS = (
    (1, "1 day"),
    (7, "1 week"),
    (30, "30 days"),
    (90, "3 months"),
    (365, "1 year"),
    (730, "2 years"),
)


def get_server(request: Request) -> Server:
    server: Server = request.app.state.oauth
    return server


ServerDep = Annotated[Server, Depends(get_server)]


def _uri(settings: Settings, request: Request) -> str:
    """The request's URL as the issuer names it (behind a proxy, the public
    https URL, which Authlib insists on)."""
    uri = settings.issuer.rstrip("/") + request.url.path
    return f"{uri}?{request.url.query}" if request.url.query else uri


# -- metadata ---------------------------------------------------------------


def metadata(settings: Settings) -> dict[str, Any]:
    issuer = settings.issuer.rstrip("/")
    doc: dict[str, Any] = {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "registration_endpoint": f"{issuer}/oauth/register",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "jwks_uri": f"{issuer}/oauth/jwks",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "scopes_supported": [OPENID, *all_scopes(), *VENDOR_SCOPES],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [keys.ALG],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            *CLAIMS.values(),
        ],
        "authorization_response_iss_parameter_supported": True,
        # OIDC Discovery 3: request objects are refused (Core 6.1, 6.2).
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_details_types_supported": ["urn:vrm:consent:data-access"],
        "purposes_supported": sorted(PURPOSES),
    }
    AuthorizationServerMetadata(doc).validate()
    return doc


@router.get("/.well-known/oauth-authorization-server")
@router.get("/.well-known/openid-configuration")
def oauth_metadata(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(metadata(settings), headers={"Access-Control-Allow-Origin": "*"})


@router.get("/oauth/jwks")
def jwks(vault: VaultDep) -> JSONResponse:
    # Public keys only, nothing personal: any cache may keep them for a few
    # minutes, unlike the rest of /oauth/ (no-store by default, vrm/headers.py).
    return JSONResponse(
        keys.jwks(vault),
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"},
    )


def bearer_token(request: Request) -> str | None:
    """RFC 6750 2.1 only: never from the query string or the body."""
    return tokens.bearer(request.headers.get("authorization", ""))


def _bearer_error(status: int, error: str | None, description: str) -> JSONResponse:
    challenge = 'Bearer realm="vrm"'
    body: dict[str, str] = {}
    if error:
        challenge += f', error="{error}", error_description="{description}"'
        body = {"error": error, "error_description": description}
    return JSONResponse(
        body,
        status_code=status,
        headers={"WWW-Authenticate": challenge},
    )


@router.api_route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo(request: Request, session: SessionDep, vault: VaultDep) -> JSONResponse:
    """OIDC userinfo: the profile fields the grant allows, under a pairwise sub."""
    token = bearer_token(request)
    if token is None:
        return _bearer_error(401, None, "")
    active = tokens.check_access_token(session.connection(), vault, token)
    if active is None or active.token.customer_id is None:
        return _bearer_error(401, "invalid_token", "the access token is not active")
    if not active.openid:
        return _bearer_error(403, "insufficient_scope", "the grant does not include openid")
    return JSONResponse(user_claims(session, vault, active))


# -- authorize --------------------------------------------------------------


def _with_iss(response: Response, settings: Settings) -> Response:
    """RFC 9207: every authorization response names the issuer, errors
    included. 303 so that a browser never re-posts a form (RFC 9700 4.12)."""
    location = response.headers.get("location")
    if location is None:
        return response
    return RedirectResponse(add_params_to_uri(location, {"iss": settings.issuer}), status_code=303)


def _error(error: OAuth2Error, settings: Settings) -> Response:
    if error.redirect_uri:
        status, body, headers = error()
        return _with_iss(Response(status_code=status, headers=dict(headers)), settings)
    # No trusted redirect URI: never redirect (RFC 6749 4.1.2.1).
    message = error.description or error.error
    return render("error.html", status=400, message=message)


def _authorize_get(
    server: Server, session: Session, oreq: OAuthRequest, session_token: str | None
) -> Response:
    settings = server.settings
    login = current_login(session, server.vault, session_token)
    customer = login.customer if login is not None else None
    try:
        grant = server.get_consent_grant(oreq, end_user=customer)
    except OAuth2Error as error:
        if error.redirect_uri and customer is None and "none" not in prompts(oreq):
            # No error bounces to a client before the customer has logged
            # in (RFC 9700 4.11.2): the AS must not be an open redirector.
            return to_login(oreq)
        return _error(error, settings)
    prompt = prompts(oreq)
    request = oreq.data_request
    assert request is not None  # noqa: S101 - set by validation
    if login is None or must_log_in(oreq, login):
        if "none" in prompt:
            return _error(_redirect_error(oreq, "login_required"), settings)
        return to_login(oreq)
    if "consent" not in prompt:
        covering = grants.find_covering(
            session, customer_id=login.customer.id, vendor_id=oreq.client.vendor.id, request=request
        )
        if covering is not None:
            oreq.decision = Decision(customer=login.customer, grant=covering, auth_time=login.at)
            return _with_iss(
                server.create_authorization_response(oreq, grant_user=login.customer, grant=grant),
                settings,
            )
    if "none" in prompt:
        return _error(_redirect_error(oreq, "consent_required"), settings)
    return _consent_page(server, oreq, login)


def _consent_page(
    server: Server,
    oreq: OAuthRequest,
    login: Login,
    *,
    error: str = "",
    ticked: list[str] | None = None,
) -> Response:
    """The consent page; again with ``error`` (400) and the customer's ticks
    when the form came back wrong."""
    request = oreq.data_request
    assert request is not None  # noqa: S101 - set by validation
    vendor = oreq.client.vendor
    longest = grants.default_expiry(request) - utcnow()
    durations = [(d, w) for d, w in _DURATIONS if timedelta(days=d) <= longest + timedelta(hours=1)]
    if not durations:
        durations = [(max(1, longest.days), "until the date asked for")]
    return render(
        "consent.html",
        status=400 if error else 200,
        form_targets=tuple(vendor.redirect_uris),
        vendor=vendor,
        accesses=request.accesses,
        openid=request.openid,
        purpose=request.purpose,
        purpose_words=PURPOSES.get(request.purpose, request.purpose),
        durations=durations,
        csrf=csrf_token(server.vault, login.token, "consent"),
        request_query=urlencode(oreq.parameters()),
        error=error,
        ticked=None if ticked is None else set(ticked),
    )


def _redirect_error(oreq: OAuthRequest, error: str) -> OAuth2Error:
    exc = OAuth2Error(error=error, state=oreq.payload.state)
    exc.redirect_uri = oreq.payload.redirect_uri or oreq.client.get_default_redirect_uri()
    return exc


@router.get("/oauth/authorize")
async def authorize(
    request: Request,
    server: ServerDep,
    session: SessionDep,
    settings: SettingsDep,
    session_token: SessionTokenDep,
) -> Response:
    items = list(request.query_params.multi_items())
    oreq = OAuthRequest(
        "GET", _uri(settings, request), request.headers, items, SessionTransaction(session)
    )
    return await run_in_threadpool(_authorize_get, server, session, oreq, session_token)


def _authorize_post(
    server: Server,
    session: Session,
    oreq: OAuthRequest,
    form: ConsentForm,
    session_token: str | None,
) -> Response:
    settings, vault = server.settings, server.vault
    login = current_login(session, vault, session_token)
    if login is None:
        return render("error.html", status=401, message="Your session ended. Start again.")
    if not form.problem and not csrf_ok(vault, login.token, "consent", form.csrf):
        return render("error.html", status=403, message="This form expired. Start again.")
    try:
        grant = server.get_consent_grant(oreq, end_user=login.customer)
    except OAuth2Error as error:
        return _error(error, settings)
    request = oreq.data_request
    assert request is not None  # noqa: S101 - set by validation
    if form.problem:
        # The page again, with the same request and a fresh CSRF token: no
        # more than a GET of the authorization endpoint would give.
        message = f"The form was not filled in correctly: {form.problem}."
        return _consent_page(server, oreq, login, error=message, ticked=form.ticked)
    if form.decision != "allow" or (not form.allow and not request.openid):
        denied = AccessDeniedError(redirect_uri=grant.redirect_uri, state=oreq.payload.state)
        return _error(denied, settings)
    now = utcnow()
    expires_at: datetime = grants.default_expiry(request, now)
    if form.days is not None:
        expires_at = min(expires_at, now + timedelta(days=form.days))
    new_grant = grants.create(
        session,
        customer_id=login.customer.id,
        vendor_id=oreq.client.vendor.id,
        request=request,
        allowed=form.allow,
        expires_at=expires_at,
    )
    oreq.decision = Decision(customer=login.customer, grant=new_grant, auth_time=login.at)
    response = server.create_authorization_response(oreq, grant_user=login.customer, grant=grant)
    return _with_iss(response, settings)


@router.post("/oauth/authorize")
async def authorize_decision(
    request: Request,
    server: ServerDep,
    session: SessionDep,
    settings: SettingsDep,
    session_token: SessionTokenDep,
    raw: PageFormDep,
) -> Response:
    try:
        # Room for any query a server's request line admits (h11: 16 KiB),
        # twice over for its encoding again in the page.
        query = form_fields(raw, {"request": 32768})["request"]
    except FormError as exc:
        message = f"The form was not filled in correctly: {exc.message}. Start again."
        return render("error.html", status=400, message=message)
    form = read_consent(raw)
    items = parse_qsl(query, keep_blank_values=True)
    uri = settings.issuer.rstrip("/") + "/oauth/authorize?" + query
    oreq = OAuthRequest("GET", uri, request.headers, items, SessionTransaction(session))
    return await run_in_threadpool(_authorize_post, server, session, oreq, form, session_token)


# -- token, revocation, introspection ------------------------------------------

# The vendor-facing hot paths are one lean ASGI app (consent/oauth/endpoints.py);
# create_app also puts it in front of the routing for POSTs.
router.routes.extend(
    Route(path, vendor_endpoint, methods=["POST"], include_in_schema=False) for path in PATHS
)
