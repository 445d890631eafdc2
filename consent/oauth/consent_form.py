"""The consent page's form, read field by field through the pages' one
form reader: a file, a repeated field, a number out of range or a tick that
names no scope becomes a message for the page, never a 500."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.datastructures import FormData

from consent.grants import service as grants
from consent.pages import FormError, form_fields, form_list
from consent.policy import Access, ScopeError, parse_scope


@dataclass
class ConsentForm:
    """The consent page's answer, or what was wrong with it."""

    csrf: str = ""
    decision: str = ""
    days: int | None = None
    allow: list[Access] = field(default_factory=list)
    ticked: list[str] | None = None
    problem: str = ""


def read_consent(form: FormData) -> ConsentForm:
    """Every field of the consent form, each checked (pages.form_fields):
    a wrong one gives the page again with a message, never a 500."""
    out = ConsentForm(ticked=[v for v in form.getlist("allow") if isinstance(v, str)])
    try:
        ticked = form_list(form, "allow", max_items=64, max_length=100)
        fields = form_fields(form, {"csrf": 100, "decision": 10, "duration_days": 100})
        out.csrf, out.decision = fields["csrf"], fields["decision"]
        if out.decision not in ("allow", "deny"):
            raise FormError("press Allow or Deny")
        out.days = _days(fields["duration_days"])
        out.allow = [parse_scope(s) for s in ticked]
    except FormError as exc:
        out.problem = exc.message
    except ScopeError:
        out.problem = "tick only what the request lists"
    return out


def _days(text: str) -> int | None:
    if not text:
        return None
    if not (len(text) <= 4 and text.isascii() and text.isdigit()) or not (
        1 <= int(text) <= grants.MAX_GRANT_DAYS
    ):
        raise FormError(f"choose for how long from the list (1 to {grants.MAX_GRANT_DAYS} days)")
    return int(text)
