"""Export and erasure: the customer's export as the API gives it
(``vrm.export.service.export`` with the sections create_app registered),
and the API's erasure (``vrm.accounts.service.delete_account``, with the
hooks create_app registered), after a typed confirmation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from starlette.responses import JSONResponse, RedirectResponse, Response

from client.web.auth import FORM_EXPIRED, PageCustomer, PageCustomerDep
from client.web.render import render
from consent.pages import FormError, PageFormDep, form_fields
from vrm.accounts import service as accounts
from vrm.accounts.routes import OnEraseDep
from vrm.db import SessionDep
from vrm.deps import PasswordsDep, SettingsDep, VaultDep
from vrm.errors import Forbidden, TooManyRequests
from vrm.export import service as exports
from vrm.export.routes import SectionsDep

router = APIRouter(include_in_schema=False)

_DELETE_FIELDS = {"email": 320, "password": 1024, "csrf": 200}


@router.get("/account/export")
def export_page(who: PageCustomerDep) -> Response:
    return render("export.html", path="/account/export", logout_csrf=who.logout_csrf)


@router.get("/account/export/download")
def export_download(
    who: PageCustomerDep,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    sections: SectionsDep,
) -> Response:
    """The document GET /api/v1/me/export answers, encoded as FastAPI
    encodes that route's answer."""
    document = exports.export(
        session=session, vault=vault, settings=settings, customer=who.customer, sections=sections
    )
    return JSONResponse(
        jsonable_encoder(document),
        headers={
            "Content-Disposition": 'attachment; filename="vrm-export.json"',
            "Cache-Control": "no-store",
        },
    )


def _delete_page(
    who: PageCustomer,
    *,
    email: str = "",
    error: str = "",
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        "delete.html",
        path="/account/delete",
        logout_csrf=who.logout_csrf,
        csrf=who.csrf("/account/delete"),
        email=email,
        error=error,
        field_errors=field_errors or {},
        status=status,
    )


@router.get("/account/delete")
def delete_page(who: PageCustomerDep) -> Response:
    return _delete_page(who)


@router.post("/account/delete")
def delete_submit(
    request: Request,
    who: PageCustomerDep,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    on_erase: OnEraseDep,
    data: PageFormDep,
) -> Response:
    try:
        fields = form_fields(data, _DELETE_FIELDS)
    except FormError as exc:
        return _delete_page(
            who,
            email=exc.kept.get("email", ""),
            error=f"The form was not filled in correctly: {exc.message}.",
            status=400,
        )
    typed = fields["email"]
    if not who.csrf_ok("/account/delete", fields["csrf"]):
        return _delete_page(who, email=typed, error=FORM_EXPIRED, status=403)
    email = accounts.account_email(session=session, vault=vault, customer=who.customer)
    if typed.strip().casefold() != email.casefold():
        return _delete_page(
            who,
            email=typed,
            error="Nothing was deleted.",
            field_errors={"email": "Your email: this is not the email you log in with."},
            status=422,
        )
    try:
        accounts.delete_account(
            session=session,
            vault=vault,
            passwords=passwords,
            settings=settings,
            customer=who.customer,
            password=fields["password"],
            on_erase=on_erase,
        )
    except Forbidden as exc:
        return _delete_page(
            who,
            email=typed,
            error="Nothing was deleted.",
            field_errors={"password": f"Your password: {exc.detail or exc.title}"},
            status=exc.status,
        )
    except TooManyRequests as exc:
        response = _delete_page(who, email=typed, error=exc.detail or exc.title, status=exc.status)
        response.headers.update(exc.headers())
        return response
    response = RedirectResponse("/goodbye", status_code=303)
    response.delete_cookie(settings.session_cookie_name, path="/")
    return response


@router.get("/goodbye")
def goodbye() -> Response:
    return render("goodbye.html", path="/goodbye")
