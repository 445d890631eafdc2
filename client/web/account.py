"""Home, sign-up, log-out and the password: the account pages, on the
services the API's account routes call (vrm/accounts/service.py) and its
session cookie (vrm.accounts.routes.set_session_cookie). Log-in is
consent's page (``/login``), which lands on ``/`` by default."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from client.web.auth import FORM_EXPIRED, MaybeCustomerDep, PageCustomer, PageCustomerDep
from client.web.forms import errors_of, field_messages
from client.web.render import render
from consent.pages import DoubleSubmit, FormError, PageFormDep, form_fields
from vrm.accounts import service as accounts
from vrm.accounts import sessions
from vrm.accounts.models import PasswordChange, SignUp
from vrm.accounts.routes import OnKeysMovedDep, set_session_cookie
from vrm.db import SessionDep
from vrm.deps import (
    ClientAddressDep,
    DeviceDep,
    PasswordsDep,
    SettingsDep,
    VaultDep,
)
from vrm.errors import Forbidden, TooManyRequests, VRMError
from vrm.keys.service import Vault

router = APIRouter(include_in_schema=False)

# Before a session exists, a double-submit cookie, as on /login.
_SIGNUP_CSRF = DoubleSubmit("vrm_signup_csrf", "/signup")
_SIGNUP_FIELDS = {"email": 320, "password": 1024, "password_again": 1024, "csrf": 200}
_SIGNUP_LABELS = {"email": "Email", "password": "Password", "password_again": "Password again"}
_PASSWORD_FIELDS = {
    "current_password": 1024,
    "new_password": 1024,
    "new_password_again": 1024,
    "csrf": 200,
}
_PASSWORD_LABELS = {
    "current_password": "Current password",
    "new_password": "New password",
    "new_password_again": "New password again",
}
_NOT_SENT = "The form was not filled in correctly: {}."


@router.get("/")
def home(found: MaybeCustomerDep, session: SessionDep, vault: VaultDep) -> Response:
    if found is None:
        return render("home.html", path="/")
    email = accounts.account_email(session=session, vault=vault, customer=found.customer)
    return render("home.html", path="/", logout_csrf=found.logout_csrf, email=email)


def _signup_page(
    request: Request,
    *,
    email: str = "",
    error: str = "",
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    token = _SIGNUP_CSRF.token(request)
    response = render(
        "signup.html",
        path="/signup",
        status=status,
        csrf=token,
        email=email,
        error=error,
        field_errors=field_errors or {},
        customer_held=request.app.state.settings.key_custody == "customer",
    )
    _SIGNUP_CSRF.give(response, request, token)
    return response


@router.get("/signup")
def signup_page(request: Request, found: MaybeCustomerDep) -> Response:
    if found is not None:
        return RedirectResponse("/", status_code=303)
    return _signup_page(request)


@router.post("/signup")
def signup_submit(
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    device: DeviceDep,
    form: PageFormDep,
    on_keys_moved: OnKeysMovedDep,
) -> Response:
    try:
        fields = form_fields(form, _SIGNUP_FIELDS)
    except FormError as exc:
        return _signup_page(
            request,
            email=exc.kept.get("email", ""),
            error=_NOT_SENT.format(exc.message),
            status=400,
        )
    email = fields["email"]
    if not _SIGNUP_CSRF.ok(request, fields["csrf"]):
        return _signup_page(request, email=email, error=FORM_EXPIRED, status=403)
    try:
        # The API's own request model: the same rules for email and password.
        body = SignUp.model_validate({"email": email, "password": fields["password"]})
    except ValidationError as exc:
        errors = field_messages(errors_of(exc), _SIGNUP_LABELS)
        return _signup_page(
            request, email=email, error="Please correct the form.", field_errors=errors, status=422
        )
    if fields["password_again"] != fields["password"]:
        errors = {"password_again": "Password again: the two passwords differ."}
        return _signup_page(
            request, email=email, error="Please correct the form.", field_errors=errors, status=422
        )
    try:
        made = accounts.sign_up(
            session=session,
            vault=vault,
            passwords=passwords,
            settings=settings,
            email=str(body.email),
            password=body.password,
        )
        logged = accounts.log_in(
            session=session,
            vault=vault,
            passwords=passwords,
            settings=settings,
            email=str(body.email),
            password=body.password,
            client_address=address,
            device=device,
            on_keys_moved=on_keys_moved,
        )
    except VRMError as exc:
        return _signup_page(request, email=email, error=exc.detail or exc.title, status=exc.status)
    response: Response = RedirectResponse("/", status_code=303)
    if made.recovery_key is not None:
        # Shown on this answer only (no-store, as every page): it is kept
        # nowhere, so there is no page to come back to for it.
        who = PageCustomer(logged.customer, logged.token, vault)
        response = render(
            "recovery_key.html",
            path="/signup",
            logout_csrf=who.logout_csrf,
            recovery_key=made.recovery_key,
        )
    set_session_cookie(response, request, settings, logged.token)
    _SIGNUP_CSRF.forget(response)
    return response


@router.post("/logout")
def logout(
    found: MaybeCustomerDep,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    form: PageFormDep,
) -> Response:
    if found is None:
        return RedirectResponse("/", status_code=303)
    try:
        given = form_fields(form, {"csrf": 200})["csrf"]
    except FormError:
        given = ""
    if not found.csrf_ok("/logout", given):
        email = accounts.account_email(session=session, vault=vault, customer=found.customer)
        return render(
            "home.html",
            path="/",
            logout_csrf=found.logout_csrf,
            email=email,
            error=FORM_EXPIRED,
            status=403,
        )
    sessions.log_out(session=session, vault=vault, token=found.token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(settings.session_cookie_name, path="/")
    return response


def _password_page(
    who: PageCustomer,
    session: Session,
    vault: Vault,
    *,
    notice: str = "",
    error: str = "",
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        "password.html",
        path="/account/password",
        logout_csrf=who.logout_csrf,
        csrf=who.csrf("/account/password"),
        email=accounts.account_email(session=session, vault=vault, customer=who.customer),
        notice=notice,
        error=error,
        field_errors=field_errors or {},
        status=status,
    )


@router.get("/account/password")
def password_page(
    who: PageCustomerDep, session: SessionDep, vault: VaultDep, changed: bool = False
) -> Response:
    notice = "Your password was changed. Every other session was logged out." if changed else ""
    return _password_page(who, session, vault, notice=notice)


@router.post("/account/password")
def password_submit(
    request: Request,
    who: PageCustomerDep,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    device: DeviceDep,
    form: PageFormDep,
) -> Response:
    try:
        fields = form_fields(form, _PASSWORD_FIELDS)
    except FormError as exc:
        return _password_page(who, session, vault, error=_NOT_SENT.format(exc.message), status=400)
    if not who.csrf_ok("/account/password", fields["csrf"]):
        return _password_page(who, session, vault, error=FORM_EXPIRED, status=403)
    try:
        body = PasswordChange.model_validate(
            {
                "current_password": fields["current_password"],
                "new_password": fields["new_password"],
            }
        )
    except ValidationError as exc:
        errors = field_messages(errors_of(exc), _PASSWORD_LABELS)
        return _password_page(
            who, session, vault, error="Please correct the form.", field_errors=errors, status=422
        )
    if fields["new_password_again"] != fields["new_password"]:
        errors = {"new_password_again": "New password again: the two new passwords differ."}
        return _password_page(
            who, session, vault, error="Please correct the form.", field_errors=errors, status=422
        )
    try:
        token = accounts.change_password(
            session=session,
            vault=vault,
            passwords=passwords,
            settings=settings,
            customer=who.customer,
            current_password=body.current_password,
            new_password=body.new_password,
            device=device,
        )
    except Forbidden as exc:
        errors = {"current_password": f"Current password: {exc.detail or exc.title}"}
        return _password_page(
            who,
            session,
            vault,
            error="Nothing was changed.",
            field_errors=errors,
            status=exc.status,
        )
    except TooManyRequests as exc:
        response = _password_page(
            who, session, vault, error=exc.detail or exc.title, status=exc.status
        )
        response.headers.update(exc.headers())
        return response
    response = RedirectResponse("/account/password?changed=true", status_code=303)
    set_session_cookie(response, request, settings, token)
    return response
