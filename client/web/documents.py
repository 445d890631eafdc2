"""The profile and preferences pages: the document as a form, saved with
the service the API's PATCH calls (``patch_document``, under the ETag the
page was read with), its refusals shown beside the fields."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter
from starlette.responses import RedirectResponse, Response

from client.web.auth import FORM_EXPIRED, PageCustomer, PageCustomerDep
from client.web.fields import DocumentForm, Field, Group, patch, shown, typed
from client.web.forms import errors_of, field_messages
from client.web.render import render
from consent.pages import FormError, PageFormDep, form_fields
from vrm.catalogue.preferences import Channel, Frequency
from vrm.db import SessionDep
from vrm.deps import VaultDep
from vrm.errors import PreconditionFailed, ValidationFailed
from vrm.records import service as records

router = APIRouter(include_in_schema=False)


def _options(literal: Any, words: dict[str, str]) -> list[tuple[str, str]]:
    # The catalogue's own list of values; words only say them.
    return [(v, words.get(v, v.replace("_", " "))) for v in get_args(literal)]


PROFILE = DocumentForm(
    "profile",
    [
        Group(
            "Name",
            [
                Field("given_name", "Given name", autocomplete="given-name"),
                Field("family_name", "Family name", autocomplete="family-name"),
            ],
        ),
        Group(
            "Contact",
            [
                Field(
                    "email",
                    "Contact email",
                    "email",
                    "The address vendors you allow may read; your login email is separate.",
                    autocomplete="email",
                ),
                Field("phone", "Phone", "tel", "Digits, spaces, + ( ) - .", autocomplete="tel"),
            ],
        ),
        Group(
            "Postal address",
            [
                Field("postal_address.street_address", "Street", autocomplete="street-address"),
                Field("postal_address.locality", "Town or city", autocomplete="address-level2"),
                Field("postal_address.region", "Region", autocomplete="address-level1"),
                Field("postal_address.postal_code", "Postal code", autocomplete="postal-code"),
                Field(
                    "postal_address.country",
                    "Country",
                    hint="Two capital letters, e.g. PT, DE, US.",
                    autocomplete="country",
                ),
            ],
            whole="postal_address",
        ),
        Group(
            "About you",
            [
                Field("birth_date", "Date of birth", "date", autocomplete="bday"),
                Field("language", "Language", hint="A language tag, e.g. en, pt-PT."),
            ],
        ),
    ],
)

PREFERENCES = DocumentForm(
    "preferences",
    [
        Group(
            "How to contact you",
            [
                Field(
                    "communication.channels",
                    "Channels",
                    "checks",
                    options=_options(Channel, {"sms": "SMS", "in_app": "in the app"}),
                ),
                Field(
                    "communication.frequency",
                    "How often",
                    "select",
                    options=_options(Frequency, {"as_needed": "as needed"}),
                ),
                Field("communication.language", "Language", hint="A language tag, e.g. en."),
            ],
        ),
        Group(
            "Quiet hours",
            [
                Field("communication.quiet_hours.start", "From", "time"),
                Field("communication.quiet_hours.end", "Until", "time"),
            ],
            whole="communication.quiet_hours",
        ),
        Group(
            "Shopping",
            [
                Field("shopping.sizes", "Sizes", "pairs", 'One a line, e.g. "shoes: 42".'),
                Field("shopping.brands", "Brands you like", "lines", "One a line."),
                Field("shopping.interests", "Interests", "lines", "One a line."),
            ],
        ),
        Group(
            "Budget",
            [
                Field("shopping.budget.amount", "Amount", hint="e.g. 150.00"),
                Field("shopping.budget.currency", "Currency", hint="Three letters, e.g. EUR."),
            ],
            whole="shopping.budget",
        ),
        Group(
            "Needs",
            [
                Field("dietary", "Dietary needs", "lines", "One a line."),
                Field("accessibility", "Accessibility needs", "lines", "One a line."),
            ],
        ),
    ],
    not_shown=("free",),
)

FORMS = {"profile": PROFILE, "preferences": PREFERENCES}
_WORDS = {
    "profile": (
        "Your profile",
        "Who you are and how to reach you. Leave a field empty to remove it.",
    ),
    "preferences": (
        "Your preferences",
        "How you like to be contacted, and what you like. Leave a field empty to remove it.",
    ),
}


def _page(
    who: PageCustomer,
    form: DocumentForm,
    *,
    values: dict[str, Any],
    etag: str,
    free: int = 0,
    notice: str = "",
    error: str = "",
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    path = f"/data/{form.category}"
    heading, intro = _WORDS[form.category]
    return render(
        "document.html",
        path=path,
        logout_csrf=who.logout_csrf,
        csrf=who.csrf(path),
        heading=heading,
        intro=intro,
        form=form,
        values=values,
        etag=etag,
        free=free,
        notice=notice,
        error=error,
        field_errors=field_errors or {},
        status=status,
    )


def _add_routes(category: str) -> None:
    form = FORMS[category]
    path = f"/data/{category}"

    def read(
        who: PageCustomerDep, session: SessionDep, vault: VaultDep, saved: bool = False
    ) -> Response:
        document = records.read_document(
            session=session, vault=vault, customer_id=who.customer.id, category=category
        )
        return _page(
            who,
            form,
            values=shown(form, document.public),
            etag=document.etag,
            free=len(document.public.get("free") or {}),
            notice="Saved." if saved else "",
        )

    def save(
        who: PageCustomerDep, session: SessionDep, vault: VaultDep, data: PageFormDep
    ) -> Response:
        current = records.read_document(
            session=session, vault=vault, customer_id=who.customer.id, category=category
        )
        free = len(current.public.get("free") or {})
        try:
            sent = form_fields(data, {"csrf": 200, "etag": 200})
            values = typed(form, data)
        except FormError as exc:
            return _page(
                who,
                form,
                values={**shown(form, current.public), **exc.kept},
                etag=current.etag,
                free=free,
                error=f"The form was not filled in correctly: {exc.message}.",
                status=400,
            )
        if not who.csrf_ok(path, sent["csrf"]):
            return _page(
                who,
                form,
                values=values,
                etag=sent["etag"],
                free=free,
                error=FORM_EXPIRED,
                status=403,
            )
        try:
            records.patch_document(
                session=session,
                vault=vault,
                customer_id=who.customer.id,
                category=category,
                patch=patch(form, values, current.public),
                if_match=sent["etag"] or None,
            )
        except FormError as exc:
            return _page(
                who,
                form,
                values=values,
                etag=sent["etag"],
                free=free,
                error=exc.message,
                status=422,
            )
        except ValidationFailed as exc:
            return _page(
                who,
                form,
                values=values,
                etag=sent["etag"],
                free=free,
                error="Nothing was saved. Please correct the fields below.",
                field_errors=field_messages(errors_of(exc), form.labels),
                status=422,
            )
        except PreconditionFailed:
            return _page(
                who,
                form,
                values=values,
                # Sending it again now overwrites the other change: the
                # customer was told, and chose.
                etag=current.etag,
                free=free,
                error=(
                    f"Your {category} changed elsewhere since this page was opened, "
                    "so nothing was saved. Check the form and save again to replace it."
                ),
                status=409,
            )
        return RedirectResponse(f"{path}?saved=true", status_code=303)

    router.add_api_route(path, read, methods=["GET"])
    router.add_api_route(path, save, methods=["POST"])


for _category in FORMS:
    _add_routes(_category)
