"""The device page (RFC 8628 3.3): where the customer enters the user code
``vrm-me login`` shows them, sees which client asks for what, and approves
or denies. Served like the login and consent pages: no JavaScript, the
strict headers of consent/pages.py, a CSRF token bound to the login
session, 303 after every POST.

``GET /device`` asks for the code (``?user_code=`` fills it in, as
``verification_uri_complete`` does, 3.3.1) and, once the code is known,
shows what the client asks for; ``POST /device`` takes the code, then the
answer. Without a session the customer logs in first and comes back.
Every lookup of a code is throttled (vrm/accounts/throttle.py) by customer
and by address: a user code is short enough to type, so guesses must stay
few (RFC 8628 5.1).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from consent.oauth import first_party, rows, store
from consent.oauth.authentication import Login, current_login
from consent.oauth.grants.device_code import DEVICE_PAGE, normalise_user_code, shown
from consent.oauth.models import DeviceAuthorization
from consent.pages import FormError, PageFormDep, csrf_ok, csrf_token, form_fields, render
from vrm.accounts import sessions, throttle
from vrm.db import SessionDep
from vrm.dbtypes import utcnow
from vrm.deps import ClientAddressDep, SessionTokenDep, SettingsDep, VaultDep
from vrm.errors import TooManyRequests
from vrm.keys.service import Vault
from vrm.settings import Settings

router = APIRouter(include_in_schema=False)

_PURPOSE = "device"
_FIELDS = {"csrf": 200, "user_code": 40, "decision": 10}
_NOT_FOUND = "That code is not right, or it has expired. Check the code on your device."
# What each first-party scope lets the client do, in words.
_SCOPE_WORDS = {
    first_party.SCOPE: [
        "read and change your profile, preferences and history",
        "see, narrow and revoke what you granted vendors, and read your access log",
        "export your data, and delete your account (it asks for your password)",
    ]
}


def _to_login(user_code: str | None) -> Response:
    back = DEVICE_PAGE + ("?" + urlencode({"user_code": user_code}) if user_code else "")
    return RedirectResponse("/login?" + urlencode({"next": back}), status_code=303)


def _enter(
    vault: Vault, login: Login, *, user_code: str = "", error: str = "", status: int = 200
) -> Response:
    return render(
        "device.html",
        status=status,
        step="enter",
        csrf=csrf_token(vault, login.token, _PURPOSE),
        user_code=user_code,
        error=error,
    )


def _counters(
    vault: Vault, settings: Settings, login: Login, address: str
) -> list[throttle.Counter]:
    return [
        throttle.Counter(
            vault.blind_index("device-code-customer", login.customer.id),
            settings.login_max_failures,
        ),
        throttle.Counter(
            vault.blind_index("device-code-address", address),
            settings.login_max_failures_per_address,
        ),
    ]


def _waiting(
    session: Session,
    vault: Vault,
    settings: Settings,
    login: Login,
    address: str,
    user_code: str | None,
) -> DeviceAuthorization | None:
    """The request still waiting for an answer under this user code, or
    None; every try counts against the throttles but a right one, which is
    handed back. TooManyRequests once there were too many wrong ones."""
    counters = _counters(vault, settings, login, address)
    throttle.reserve(session, counters=counters, settings=settings, now=utcnow())
    found = None
    if user_code is not None:
        found = store.device_by_user_code(session.connection(), vault.token_hash(user_code))
    if found is None or found.approved is not None or found.expires_at <= utcnow():
        return None
    # Handed back, not forgotten: a customer who enters a code of their
    # own now and then must not earn a fresh set of guesses by it.
    throttle.succeed(session, hand_back=counters)
    session.commit()
    return found


def _confirm(
    vault: Vault,
    session: Session,
    login: Login,
    found: DeviceAuthorization,
    user_code: str,
) -> Response:
    vendor = rows.vendor(session.connection(), found.vendor_id)
    words = [w for scope in found.scope.split() for w in _SCOPE_WORDS.get(scope, [scope])]
    return render(
        "device.html",
        step="confirm",
        client_name=vendor.name if vendor is not None else found.vendor_id,
        scope_words=words,
        csrf=csrf_token(vault, login.token, _PURPOSE),
        user_code=shown(user_code),
    )


def _too_many(vault: Vault, login: Login, exc: TooManyRequests) -> Response:
    response = _enter(vault, login, error=exc.detail or exc.title, status=429)
    response.headers.update(exc.headers())
    return response


@router.get(DEVICE_PAGE)
def device_page(
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    session_token: SessionTokenDep,
    user_code: str | None = None,
    result: str | None = None,
) -> Response:
    login = current_login(session, vault, session_token)
    if login is None:
        return _to_login(user_code)
    if result in ("approved", "denied"):
        return render("device.html", step="done", approved=result == "approved")
    if not user_code:
        return _enter(vault, login)
    code = normalise_user_code(user_code[:40])
    try:
        found = _waiting(session, vault, settings, login, address, code)
    except TooManyRequests as exc:
        return _too_many(vault, login, exc)
    if found is None or code is None:
        return _enter(vault, login, user_code=user_code[:40], error=_NOT_FOUND, status=400)
    return _confirm(vault, session, login, found, code)


@router.post(DEVICE_PAGE)
def device_answer(
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    session_token: SessionTokenDep,
    form: PageFormDep,
) -> Response:
    login = current_login(session, vault, session_token)
    if login is None:
        return render(
            "error.html", status=401, message="Your session ended. Log in and start again."
        )
    try:
        fields = form_fields(form, _FIELDS)
    except FormError as exc:
        return _enter(
            vault, login, error=f"The form was not filled in correctly: {exc.message}.", status=400
        )
    if not csrf_ok(vault, login.token, _PURPOSE, fields["csrf"]):
        return render("error.html", status=403, message="This form expired. Start again.")
    code = normalise_user_code(fields["user_code"])
    decision = fields["decision"]
    if decision == "":
        # The code entered: show what it asks for (a GET, so a reload
        # re-posts nothing).
        target = (
            DEVICE_PAGE
            + "?"
            + urlencode({"user_code": shown(code) if code else fields["user_code"]})
        )
        return RedirectResponse(target, status_code=303)
    if decision not in ("approve", "deny"):
        return _enter(vault, login, error="Choose Approve or Deny.", status=400)
    try:
        found = _waiting(session, vault, settings, login, address, code)
    except TooManyRequests as exc:
        return _too_many(vault, login, exc)
    if found is None or code is None:
        return _enter(vault, login, user_code=fields["user_code"], error=_NOT_FOUND, status=400)
    approved = decision == "approve"
    # A customer-held root key goes with the approval, sealed to the
    # device code (consent/oauth/first_party.py); the session gives it.
    root = sessions.root_of(session=session, vault=vault, token=login.token) if approved else None
    if not store.decide_device(
        session.connection(),
        found.user_code_hash,
        login.customer.id,
        approved,
        utcnow(),
        first_party.seal_approval(found, login.customer.id, root),
    ):
        return _enter(vault, login, error=_NOT_FOUND, status=400)
    session.commit()
    result = "approved" if approved else "denied"
    return RedirectResponse(f"{DEVICE_PAGE}?result={result}", status_code=303)
