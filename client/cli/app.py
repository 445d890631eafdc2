"""``vrm-me``: the customer's store from a terminal.

Every command but ``login`` uses the saved login (client/cli/credentials.py)
through the SDK (:class:`client.VRMClient` with :class:`client.device.BearerAuth`,
which renews the tokens and saves them again). Answers are Rich tables, or
JSON with ``--json``; a failure is one line on stderr and exit status 1
(:func:`client.cli.main`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import urlsplit

import typer
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from client.cli import credentials
from client.cli.credentials import Credentials
from client.device import BearerAuth, Tokens, finish_login, revoke, start_login
from client.errors import VRMError
from client.models import EventType, Item, Label, NewEvent, PostalAddress, Preferences, Profile
from client.sync import VRMClient

app = typer.Typer(
    name="vrm-me",
    help="Your personal data store from the command line: log in, see and change your "
    "data, your grants to vendors and who read what.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
profile_app = typer.Typer(help="Your profile.", no_args_is_help=True)
prefs_app = typer.Typer(help="Your preferences.", no_args_is_help=True)
history_app = typer.Typer(help="Your purchase and interaction history.", no_args_is_help=True)
grants_app = typer.Typer(help="What you allowed vendors.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")
app.add_typer(prefs_app, name="prefs")
app.add_typer(history_app, name="history")
app.add_typer(grants_app, name="grants")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
SERVER_ENV = "VRM_ME_SERVER"
LABELS: tuple[str, ...] = get_args(Label)
EVENT_TYPES: tuple[str, ...] = get_args(EventType)


class Fail(Exception):
    """A failure to report in one line (bad input, refused, ...)."""


# -- plumbing ------------------------------------------------------------------


@contextmanager
def store() -> Iterator[VRMClient]:
    """The SDK, logged in with the saved tokens, saving renewed ones; the
    login held for this process alone meanwhile (credentials.held)."""
    with credentials.held():
        saved = credentials.load()

        def keep(tokens: Tokens) -> None:
            credentials.save(Credentials(saved.server, tokens))

        auth = BearerAuth(saved.tokens, token_url=f"{saved.server}/oauth/token", on_refresh=keep)
        with VRMClient(saved.server, auth=auth) as client:
            yield client


def emit_json(value: Any) -> None:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    text = json.dumps(to_jsonable_python(value), indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")


def show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, list | dict):
        return json.dumps(to_jsonable_python(value), ensure_ascii=False)
    return str(value)


def key_values(title: str, rows: Mapping[str, Any]) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    for key, value in rows.items():
        table.add_row(key, show(value))
    out.print(table)


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted keys (``postal_address.locality``)."""
    flat: dict[str, Any] = {}
    for key, inner in value.items():
        if isinstance(inner, Mapping) and inner:
            flat.update(flatten(inner, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = inner
    return flat


def assignments(
    pairs: list[str], known: Mapping[str, set[str] | None], *, parse_json: bool
) -> dict[str, Any]:
    """``FIELD=VALUE`` pairs as a JSON merge patch; ``FIELD.SUB=VALUE`` sets
    a member of an object; an empty VALUE removes the field. ``known``
    maps each field to its members (None: any)."""
    patch: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise Fail(f"{pair!r} is not FIELD=VALUE")
        head, _, rest = name.partition(".")
        if head not in known:
            raise Fail(f"unknown field {head!r}: one of {', '.join(sorted(known))}")
        members = known[head]
        if rest and members is not None and rest not in members:
            raise Fail(f"unknown field {name!r}: {head} has {', '.join(sorted(members))}")
        value: Any = None
        if raw != "":
            value = raw
            if parse_json:
                try:
                    value = json.loads(raw)
                except ValueError:
                    value = raw
        if rest:
            inner = patch.setdefault(head, {})
            if not isinstance(inner, dict):
                raise Fail(f"{head} is set both whole and by member")
            inner[rest] = value
        else:
            patch[head] = value
    return patch


# -- login and logout ----------------------------------------------------------


def _store_url(server: str | None, usage: str) -> str:
    """The store to talk to: ``--server``, else $VRM_ME_SERVER, else the
    saved login's; ``usage`` says how to give it when there is none."""
    url = server or os.environ.get(SERVER_ENV)
    if url is None:
        try:
            url = credentials.load().server
        except credentials.CredentialsError:
            raise Fail(f"say which store: {usage}") from None
    return url.rstrip("/")


@app.command()
def login(
    server: Annotated[
        str | None,
        typer.Option(help="The store's address, e.g. https://vrm.example (or $VRM_ME_SERVER)."),
    ] = None,
    json_out: Json = False,
) -> None:
    """Log in with your browser (OAuth device flow): no password is stored here."""
    url = _store_url(server, "vrm-me login --server URL")
    try:
        previous: Credentials | None = credentials.load()
    except credentials.CredentialsError:
        previous = None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Fail(f"{url!r} is not an http(s) address")
    code = start_login(url)
    where = code.verification_uri_complete or code.verification_uri
    err.print(f"Open {code.verification_uri} in your browser and enter the code {code.user_code}")
    err.print(f"(or open {where})", soft_wrap=True)
    err.print(f"Waiting for you to approve (for up to {code.expires_in // 60} minutes)...")
    sys.stderr.flush()
    try:
        tokens = finish_login(url, code)
    except VRMError as error:
        if error.title == "access_denied":
            raise Fail("login denied in the browser: nothing was saved") from None
        if error.title == "expired_token":
            raise Fail("the code expired before it was approved: run vrm-me login again") from None
        raise
    with credentials.held():
        credentials.save(Credentials(url, tokens))
    if previous is not None:
        # The login this one replaces ends at its store too (best effort:
        # that store may be gone).
        with suppress(VRMError):
            revoke(previous.server, previous.tokens.refresh_token)
    with store() as client:
        account = client.me()
    if json_out:
        emit_json({"server": url, "email": account.email, "id": account.id})
    else:
        out.print(f"Logged in to {url} as {account.email}.")


@app.command()
def logout() -> None:
    """Log out: the store forgets this login, and so does this computer."""
    with credentials.held():
        saved = credentials.load()
        try:
            revoke(saved.server, saved.tokens.refresh_token)
        except VRMError as error:
            credentials.delete()
            raise Fail(f"logged out here, but the store could not be told: {error}") from None
        credentials.delete()
    out.print("Logged out.")


@app.command()
def recover(
    email: Annotated[str, typer.Option(help="Your account's email.")],
    server: Annotated[
        str | None,
        typer.Option(help="The store's address (or $VRM_ME_SERVER, or the saved login's)."),
    ] = None,
    stdin: Annotated[
        bool,
        typer.Option(
            "--stdin", help="Read the recovery key, then the new password, from stdin, a line each."
        ),
    ] = False,
    json_out: Json = False,
) -> None:
    """A forgotten password: your recovery key sets a new one. Every login
    ends, this computer's too: log in again afterwards. Prints your new
    recovery key, shown only now: the one you used no longer works."""
    url = _store_url(server, "vrm-me recover --server URL --email EMAIL")
    if stdin:
        recovery_key = sys.stdin.readline().strip()
        new_password = sys.stdin.readline().rstrip("\r\n")
    else:
        recovery_key = typer.prompt("Recovery key", hide_input=True, err=True)
        new_password = typer.prompt(
            "New password", hide_input=True, confirmation_prompt=True, err=True
        )
    with VRMClient(url) as client:
        try:
            new_key = client.recover(email, recovery_key, new_password)
        except VRMError as error:
            # A 401 here is the key or the email, not a login that ended.
            if error.status == 401:
                raise Fail(error.detail or "the email or the recovery key is wrong") from None
            raise
    with credentials.held(), suppress(credentials.CredentialsError):
        if credentials.load().server == url:
            # Its tokens no longer work: every login ended.
            credentials.delete()
    if json_out:
        emit_json({"recovery_key": new_key})
    else:
        out.print("Your password is set. Your new recovery key, shown only now:")
        out.print(new_key, style="bold")
        out.print("Keep it somewhere safe, away from this computer. Log in with vrm-me login.")


# -- profile and preferences -----------------------------------------------------

PROFILE_FIELDS: dict[str, set[str] | None] = {
    name: (set(PostalAddress.model_fields) if name == "postal_address" else None)
    for name in Profile.model_fields
}
PREFERENCE_FIELDS: dict[str, set[str] | None] = dict.fromkeys(Preferences.model_fields)


def _document(document: BaseModel, title: str, json_out: bool) -> None:
    body = document.model_dump(mode="json", exclude_none=True)
    if json_out:
        emit_json(body)
    else:
        key_values(title, flatten(body))


@profile_app.command("show")
def profile_show(json_out: Json = False) -> None:
    """Show your profile."""
    with store() as client:
        _document(client.profile(), "Profile", json_out)


@profile_app.command("set")
def profile_set(
    pairs: Annotated[
        list[str], typer.Argument(metavar="FIELD=VALUE...", help="e.g. given_name=Ada")
    ],
    json_out: Json = False,
) -> None:
    """Change profile fields (FIELD= with nothing after it removes one;
    postal_address.locality=Porto sets part of the address)."""
    patch = assignments(pairs, PROFILE_FIELDS, parse_json=False)
    with store() as client:
        _document(client.patch_profile(patch), "Profile", json_out)


@prefs_app.command("show")
def prefs_show(json_out: Json = False) -> None:
    """Show your preferences."""
    with store() as client:
        _document(client.preferences(), "Preferences", json_out)


@prefs_app.command("set")
def prefs_set(
    pairs: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE...",
            help="e.g. dietary='[\"vegetarian\"]' communication.frequency=weekly",
        ),
    ],
    json_out: Json = False,
) -> None:
    """Change preferences; a VALUE that is JSON is read as JSON."""
    patch = assignments(pairs, PREFERENCE_FIELDS, parse_json=True)
    with store() as client:
        _document(client.patch_preferences(patch), "Preferences", json_out)


# -- history -------------------------------------------------------------------------


def _check_labels(labels: list[str]) -> list[Label]:
    wrong = [label for label in labels if label not in LABELS]
    if wrong:
        raise Fail(f"unknown label {wrong[0]!r}: one of {', '.join(LABELS)}")
    return labels  # type: ignore[return-value]


@history_app.command("list")
def history_list(
    vendor: Annotated[str | None, typer.Option(help="Only this vendor's events.")] = None,
    type: Annotated[str | None, typer.Option(help="purchase, return, visit, ...")] = None,
    label: Annotated[str | None, typer.Option(help="gift, not_for_me or private.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    json_out: Json = False,
) -> None:
    """List your history, newest first."""
    if type is not None and type not in EVENT_TYPES:
        raise Fail(f"unknown type {type!r}: one of {', '.join(EVENT_TYPES)}")
    labels = _check_labels([label]) if label is not None else [None]
    with store() as client:
        events = list(
            islice(
                client.history(vendor=vendor, type=type, label=labels[0]),  # type: ignore[arg-type]
                limit,
            )
        )
    if json_out:
        emit_json([e.model_dump(mode="json", exclude_none=True) for e in events])
        return
    table = Table(title="History")
    for column in ("id", "when", "vendor", "type", "amount", "labels", "items"):
        table.add_column(column, overflow="fold")
    for e in events:
        amount = f"{e.amount} {e.currency or ''}".strip() if e.amount is not None else ""
        items = ", ".join(
            i.name + (f" [{', '.join(i.labels)}]" if i.labels else "") for i in e.items
        )
        table.add_row(
            e.id, show(e.occurred_at), e.vendor, e.type, amount, ", ".join(e.labels), items
        )
    out.print(table)


@history_app.command("add")
def history_add(
    vendor: Annotated[str, typer.Option(help="Whom it was with.")],
    type: Annotated[str, typer.Option(help="purchase, return, support_case, ...")] = "purchase",
    at: Annotated[
        str | None, typer.Option(help="When (ISO 8601, e.g. 2026-12-01T15:00Z); now if left out.")
    ] = None,
    item: Annotated[list[str] | None, typer.Option(help="An item: NAME or NAME=AMOUNT.")] = None,
    amount: Annotated[str | None, typer.Option(help="The total.")] = None,
    currency: Annotated[str | None, typer.Option(help="e.g. EUR")] = None,
    label: Annotated[list[str] | None, typer.Option(help="gift, not_for_me, private.")] = None,
    notes: Annotated[str | None, typer.Option(help="Your own notes.")] = None,
    json_out: Json = False,
) -> None:
    """Add an event to your history."""
    if type not in EVENT_TYPES:
        raise Fail(f"unknown type {type!r}: one of {', '.join(EVENT_TYPES)}")
    try:
        when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    except ValueError:
        raise Fail(f"--at {at!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise Fail("--at needs a time zone (e.g. 2026-12-01T15:00Z)")
    items = []
    for raw in item or []:
        name, sep, price = raw.rpartition("=") if "=" in raw else (raw, "", "")
        items.append(Item(name=name, amount=_decimal(price, "--item") if sep else None))
    event = NewEvent(
        vendor=vendor,
        type=type,
        occurred_at=when,
        items=items,
        amount=_decimal(amount, "--amount") if amount is not None else None,
        currency=currency,
        notes=notes,
        labels=_check_labels(label or []),
    )
    with store() as client:
        added = client.add_event(event)
    if json_out:
        emit_json(added)
    else:
        out.print(f"Added event {added.id}.")


def _decimal(raw: str, option: str) -> Decimal:
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise Fail(f"{option}: {raw!r} is not an amount") from None


@history_app.command("label")
def history_label(
    event_id: Annotated[str, typer.Argument(help="The event's id (history list shows it).")],
    labels: Annotated[
        list[str] | None,
        typer.Argument(help="gift (not your taste), not_for_me, private (never shared)."),
    ] = None,
    json_out: Json = False,
) -> None:
    """Set an event's labels (none: clear them)."""
    chosen = _check_labels(labels or [])
    with store() as client:
        event = client.label_event(event_id, chosen)
    if json_out:
        emit_json(event)
    else:
        out.print(f"Event {event.id} labelled: {', '.join(event.labels) or 'none'}.")


# -- grants and the access log ---------------------------------------------------------


@grants_app.command("list")
def grants_list(json_out: Json = False) -> None:
    """Every grant you gave, newest first."""
    with store() as client:
        grants = client.grants()
    if json_out:
        emit_json([g.model_dump(mode="json") for g in grants])
        return
    table = Table(title="Grants")
    for column in ("id", "vendor", "status", "scopes", "purpose", "expires"):
        table.add_column(column, overflow="fold")
    for g in grants:
        table.add_row(
            g.id, g.vendor.name, g.status, " ".join(g.scopes), g.purpose, show(g.expires_at)
        )
    out.print(table)


@grants_app.command("show")
def grants_show(grant_id: str, json_out: Json = False) -> None:
    """One grant in full, with its history."""
    with store() as client:
        grant = client.grant(grant_id)
    if json_out:
        emit_json(grant.model_dump(mode="json"))
        return
    key_values(
        f"Grant {grant.id}",
        {
            "vendor": grant.vendor.name,
            "status": grant.status,
            "may": "; ".join(grant.described),
            "scopes": " ".join(grant.scopes),
            "purpose": grant.purpose_described,
            "since": grant.created_at,
            "until": grant.expires_at,
            "revoked": grant.revoked_at,
        },
    )
    for change in grant.changes:
        out.print(f"{show(change.at)}  {change.kind} by {change.by}")


@grants_app.command("narrow")
def grants_narrow(
    grant_id: str,
    scopes: Annotated[list[str], typer.Argument(help="The scopes to keep (a subset).")],
    json_out: Json = False,
) -> None:
    """Keep only some of a grant's scopes."""
    with store() as client:
        grant = client.narrow_grant(grant_id, scopes)
    if json_out:
        emit_json(grant.model_dump(mode="json"))
    else:
        out.print(f"Grant {grant.id} now allows: {' '.join(grant.scopes)}.")


@grants_app.command("revoke")
def grants_revoke(grant_id: str) -> None:
    """Withdraw a grant: the vendor's tokens stop working at once."""
    with store() as client:
        client.revoke_grant(grant_id)
    out.print(f"Grant {grant_id} revoked.")


@app.command("access-log")
def access_log(
    vendor: Annotated[str | None, typer.Option(help="Only this vendor's (client id).")] = None,
    type: Annotated[str | None, typer.Option(help="e.g. data.read, consent.revoked")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    json_out: Json = False,
) -> None:
    """Who read or changed what, and when: your entries of the audit log."""
    with store() as client:
        entries = list(islice(client.access_log(vendor=vendor, type=type), limit))
    if json_out:
        emit_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table(title="Access log")
    for column in ("#", "at", "type", "vendor", "what"):
        table.add_column(column, overflow="fold")
    for e in entries:
        entry = e.entry
        what = entry.get("fields") or entry.get("scopes") or entry.get("categories") or ""
        table.add_row(
            str(e.index),
            show(entry.get("at")),
            show(entry.get("type")),
            show(entry.get("vendor")),
            show(what),
        )
    out.print(table)


# -- export and deletion -------------------------------------------------------------


@app.command()
def export(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file (else stdout).")
    ] = None,
) -> None:
    """Everything the store holds about you, as JSON."""
    with store() as client:
        if err.is_terminal:
            columns = (
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=err, transient=True) as progress:
                # A spinner while the store assembles it, then the bytes.
                task = progress.add_task("Exporting your data", total=None)

                def arrived(received: int, total: int | None) -> None:
                    progress.update(task, completed=received, total=total)

                document = client.export(on_progress=arrived)
        else:
            document = client.export()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    _write_private(output, text.encode())
    err.print(f"Exported to {output} ({len(text.encode())} bytes).")


def _write_private(target: Path, body: bytes) -> None:
    """Your data, readable by you alone (0600), written whole or not at all."""
    try:
        credentials.write_private(target, body)
    except OSError as error:
        raise Fail(f"cannot write {target}: {error.strerror}") from None


@app.command("delete-account")
def delete_account(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to type the email.")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Erase your account and all its data for good. Your data keys are
    destroyed first (crypto-shredding), so even backups cannot be read."""
    with store() as client:
        email = client.me().email
        if not yes:
            err.print(
                f"This erases [bold]{email}[/bold] and everything in it, for good: "
                "its keys are destroyed, so no backup can bring it back."
            )
            typed = typer.prompt("Type your email to confirm", err=True)
            if typed.strip() != email:
                raise Fail("not deleted: what you typed is not the account's email")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, err=True)
        client.delete_account(password)
    credentials.delete()
    out.print("Account deleted.")
