"""A forgotten password: the recovery key shown at sign-up sets a new one
(vrm.accounts.service.recover, as POST /api/v1/recovery does). The answer
shows the new recovery key once; the customer logs in afterwards."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from client.web.auth import FORM_EXPIRED
from client.web.forms import errors_of, field_messages
from client.web.render import render
from consent.pages import DoubleSubmit, FormError, PageFormDep, form_fields
from vrm.accounts import service as accounts
from vrm.accounts.models import Recovery
from vrm.db import SessionDep
from vrm.deps import ClientAddressDep, PasswordsDep, SettingsDep, VaultDep
from vrm.errors import VRMError

router = APIRouter(include_in_schema=False)

# No session yet: a double-submit cookie, as on /login and /signup.
_CSRF = DoubleSubmit("vrm_recover_csrf", "/recover")
_FIELDS = {
    "email": 320,
    "recovery_key": 200,
    "new_password": 1024,
    "new_password_again": 1024,
    "csrf": 200,
}
_LABELS = {
    "email": "Email",
    "recovery_key": "Recovery key",
    "new_password": "New password",
    "new_password_again": "New password again",
}


def _page(
    request: Request,
    *,
    email: str = "",
    error: str = "",
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    token = _CSRF.token(request)
    response = render(
        "recover.html",
        path="/recover",
        status=status,
        csrf=token,
        email=email,
        error=error,
        field_errors=field_errors or {},
    )
    _CSRF.give(response, request, token)
    return response


@router.get("/recover")
def recover_page(request: Request) -> Response:
    return _page(request)


@router.post("/recover")
def recover_submit(
    request: Request,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    form: PageFormDep,
) -> Response:
    try:
        fields = form_fields(form, _FIELDS)
    except FormError as exc:
        error = f"The form was not filled in correctly: {exc.message}."
        return _page(request, email=exc.kept.get("email", ""), error=error, status=400)
    email = fields["email"]
    if not _CSRF.ok(request, fields["csrf"]):
        return _page(request, email=email, error=FORM_EXPIRED, status=403)
    try:
        body = Recovery.model_validate(
            {
                "email": email,
                "recovery_key": fields["recovery_key"],
                "new_password": fields["new_password"],
            }
        )
    except ValidationError as exc:
        errors = field_messages(errors_of(exc), _LABELS)
        return _page(
            request, email=email, error="Please correct the form.", field_errors=errors, status=422
        )
    if fields["new_password_again"] != fields["new_password"]:
        errors = {"new_password_again": "New password again: the two passwords differ."}
        return _page(
            request, email=email, error="Please correct the form.", field_errors=errors, status=422
        )
    try:
        new_key = accounts.recover(
            session=session,
            vault=vault,
            passwords=passwords,
            settings=settings,
            email=str(body.email),
            recovery_key=body.recovery_key,
            new_password=body.new_password,
            client_address=address,
        )
    except VRMError as exc:
        return _page(request, email=email, error=exc.detail or exc.title, status=exc.status)
    response = render("recovery_key.html", path="/recover", recovery_key=new_key, recovered=True)
    _CSRF.forget(response)
    return response
