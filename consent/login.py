"""The login page. It opens the same session as ``POST /api/v1/session``:
one cookie, so a customer logged in either way goes straight to consent."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from consent.pages import DoubleSubmit, FormError, PageFormDep, form_fields, render
from vrm.accounts import service as accounts
from vrm.accounts.routes import OnKeysMovedDep, set_session_cookie
from vrm.db import SessionDep
from vrm.deps import (
    ClientAddressDep,
    DeviceDep,
    PasswordsDep,
    SettingsDep,
    VaultDep,
)
from vrm.errors import TooManyRequests, VRMError

router = APIRouter(include_in_schema=False)

_CSRF = DoubleSubmit("vrm_login_csrf", "/login")
# The login form's fields and their longest values.
_FIELDS = {"email": 320, "password": 1024, "csrf": 200, "next": 4000}


def safe_next(target: str | None) -> str:
    """Only paths on this server: never an open redirect."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _page(
    request: Request, *, next_url: str, email: str = "", error: str = "", status: int = 200
) -> Response:
    token = _CSRF.token(request)
    response = render(
        "login.html", status=status, csrf=token, next=next_url, email=email, error=error
    )
    _CSRF.give(response, request, token)
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return _page(request, next_url=safe_next(next))


@router.post("/login")
def login_submit(
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
        fields = form_fields(form, _FIELDS)
    except FormError as exc:
        return _page(
            request,
            next_url=safe_next(exc.kept.get("next")),
            email=exc.kept.get("email", ""),
            error=f"The form was not filled in correctly: {exc.message}.",
            status=400,
        )
    email, password, csrf = fields["email"], fields["password"], fields["csrf"]
    next_url = safe_next(fields["next"])
    if not _CSRF.ok(request, csrf):
        return _page(
            request,
            next_url=next_url,
            error="This form expired. Please log in again.",
            status=400,
        )
    try:
        logged = accounts.log_in(
            session=session,
            vault=vault,
            passwords=passwords,
            settings=settings,
            email=email,
            password=password,
            client_address=address,
            device=device,
            on_keys_moved=on_keys_moved,
        )
    except TooManyRequests as exc:
        response = _page(
            request, next_url=next_url, email=email, error=exc.detail or exc.title, status=429
        )
        response.headers.update(exc.headers())
        return response
    except VRMError as exc:
        return _page(
            request,
            next_url=next_url,
            email=email,
            error=exc.detail or exc.title,
            status=exc.status,
        )
    answer: Response = RedirectResponse(next_url, status_code=303)
    if logged.recovery_key is not None:
        # This log-in handed the customer their keys: the recovery key is
        # shown on this answer only (no-store, as every page), then they go
        # on to where they were going.
        answer = render("keys_moved.html", recovery_key=logged.recovery_key, next=next_url)
    set_session_cookie(answer, request, settings, logged.token)
    _CSRF.forget(answer)
    return answer
