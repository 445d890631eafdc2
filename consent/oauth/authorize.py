"""The authorization endpoint (RFC 6749 4.1.1, OIDC Core 3.1.2) and its
consent page.

Errors follow the specs: a redirect carrying ``error``, ``state`` and
``iss`` (RFC 9207) when the client and redirect URI are known, an HTML
page otherwise (RFC 6749 4.1.2.1): a client library expects exactly those
shapes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import AccessDeniedError
from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from consent.audit import events as audit
from consent.grants import service as grants
from consent.oauth.authentication import Login, current_login, must_log_in, prompts, to_login
from consent.oauth.consent_form import ConsentForm, read_consent
from consent.oauth.deps import ServerDep
from consent.oauth.requests import Decision
from consent.oauth.requests import Request as OAuthRequest
from consent.oauth.server import Server
from consent.pages import FormError, PageFormDep, csrf_ok, csrf_token, form_fields, render
from consent.preview import preview
from consent.scopes import PURPOSES
from vrm.db import SessionDep
from vrm.dbtypes import utcnow
from vrm.deps import SessionTokenDep, SettingsDep
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


def _uri(settings: Settings, request: Request) -> str:
    """The request's URL as the issuer names it (behind a proxy, the public
    https URL, which Authlib insists on)."""
    uri = settings.issuer.rstrip("/") + request.url.path
    return f"{uri}?{request.url.query}" if request.url.query else uri


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
    return _consent_page(server, session, oreq, login)


def _consent_page(
    server: Server,
    session: Session,
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
        unreviewed=vendor.registered_by == "dynamic",
        accesses=request.accesses,
        values=preview(session, server.vault, login.customer.id, request.accesses),
        server_reads=grants.server_reads(
            request.accesses,
            customer_held=login.customer.root_by_password is not None,
            ending="while this lasts, if you allow it",
        ),
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
        return _consent_page(server, session, oreq, login, error=message, ticked=form.ticked)
    if form.decision != "allow" or (not form.allow and not request.openid):
        audit.consent_denied(
            session.connection(),
            customer_id=login.customer.id,
            vendor_id=oreq.client.vendor.id,
            purpose=request.purpose,
            requested=[a.scope for a in request.accesses],
        )
        session.commit()
        denied = AccessDeniedError(redirect_uri=grant.redirect_uri, state=oreq.payload.state)
        return _error(denied, settings)
    now = utcnow()
    expires_at: datetime = grants.default_expiry(request, now)
    if form.days is not None:
        expires_at = min(expires_at, now + timedelta(days=form.days))
    new_grant = grants.create(
        session,
        vault,
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
