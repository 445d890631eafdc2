"""``vrm vendors``: the operator's side of the vendor registry.

Secrets are printed once, when they are made, and never again: ``list``
shows none, because the database holds only their keyed hashes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from consent.vendors import service
from consent.vendors.models import GRANT_TYPES, Vendor
from vrm.db import make_engine
from vrm.errors import VRMError
from vrm.keys.service import Vault

vendors_app = typer.Typer(
    help="Vendors: the OAuth clients that ask customers for their data.",
    no_args_is_help=True,
)
out = Console()

DEFAULT_INITIAL_TOKEN_DAYS = 7
MAX_INITIAL_TOKEN_DAYS = 3650


def _fail(message: str) -> NoReturn:
    # vrm.cli imports this module to register it, so its helpers are
    # looked up when a command runs, not when the module loads.
    from vrm import cli

    # Not cli._fail: Rich would wrap a long message at the terminal width,
    # and scripts expect the error on one line.
    cli.err.print(f"vrm: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def _registry() -> Iterator[tuple[Session, Vault]]:
    """A session and a vault on the configured store; domain errors become a
    one-line ``vrm: ...`` message and exit code 1."""
    from vrm import cli

    settings = cli._settings()
    store = cli._prepare(settings)
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            yield session, Vault(store)
    except VRMError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _public(vendor: Vendor) -> dict[str, Any]:
    """Everything about a vendor except its secret and token hashes."""
    return {
        "client_id": vendor.id,
        "name": vendor.name,
        "redirect_uris": vendor.redirect_uris,
        "logo_uri": vendor.logo_uri,
        "policy_uri": vendor.policy_uri,
        "notify_uri": vendor.notify_uri,
        "contacts": vendor.contacts,
        "token_endpoint_auth_method": vendor.token_endpoint_auth_method,
        "grant_types": vendor.grant_types,
        "jwks": vendor.jwks,
        "registered_by": vendor.registered_by,
        "created_at": _when(vendor.created_at),
        "disabled_at": _when(vendor.disabled_at),
    }


def _print_once(label: str, secret: str) -> None:
    out.print(f"{label} (shown only now): {secret}", markup=False, highlight=False, soft_wrap=True)


def _read_jwks(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read {path}: {exc.strerror}")
    except ValueError:
        _fail(f"{path} is not JSON")
    if not isinstance(value, dict):
        _fail(f"{path} is not a JWK Set (a JSON object with a keys list)")
    return value


@vendors_app.command("add")
def add(
    name: Annotated[str, typer.Option(help="Name shown to customers.")],
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option(help="Redirect URI: https, or http on a loopback host. Repeatable."),
    ] = None,
    logo_uri: Annotated[str | None, typer.Option(help="https URI of the vendor's logo.")] = None,
    policy_uri: Annotated[
        str | None, typer.Option(help="https URI of the vendor's privacy policy.")
    ] = None,
    contact: Annotated[
        list[str] | None, typer.Option(help="Contact email address. Repeatable.")
    ] = None,
    notify_uri: Annotated[
        str | None, typer.Option(help="https URI told when a customer changes a grant.")
    ] = None,
    auth_method: Annotated[
        str,
        typer.Option(
            help="client_secret_basic, client_secret_post or private_key_jwt (needs --jwks)."
        ),
    ] = "client_secret_basic",
    jwks: Annotated[
        Path | None, typer.Option(help="JSON file with the vendor's public keys (a JWK Set).")
    ] = None,
    grant_type: Annotated[
        list[str] | None,
        typer.Option(help=f"Allowed grant type, repeatable (default: {', '.join(GRANT_TYPES)})."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object, secret included.")
    ] = False,
) -> None:
    """Register a vendor. Prints its client id and secret; the secret is
    shown only now."""
    key_set = None if jwks is None else _read_jwks(jwks)
    with _registry() as (session, vault):
        vendor, secret = service.register(
            session=session,
            vault=vault,
            name=name,
            redirect_uris=redirect_uri or [],
            logo_uri=logo_uri,
            policy_uri=policy_uri,
            contacts=contact or [],
            notify_uri=notify_uri,
            token_endpoint_auth_method=auth_method,
            jwks=key_set,
            grant_types=GRANT_TYPES if grant_type is None else grant_type,
        )
    if as_json:
        public = _public(vendor)
        typer.echo(json.dumps({"client_id": vendor.id, "client_secret": secret} | public))
        return
    out.print(f"registered: {vendor.name}", markup=False, highlight=False)
    out.print(f"client id: {vendor.id}", markup=False, highlight=False, soft_wrap=True)
    if secret is None:
        out.print("no client secret: the vendor signs its requests (private_key_jwt)")
    else:
        _print_once("client secret", secret)


@vendors_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the vendors, disabled ones included. Shows no secret; --json
    adds every registered field."""
    with _registry() as (session, _vault):
        vendors = service.list_vendors(session=session)  # auditors: vrm auditors list
    if as_json:
        typer.echo(json.dumps([_public(v) for v in vendors]))
        return
    if not vendors:
        out.print("no vendors registered")
        return
    table = Table()
    table.add_column("client id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("redirect URIs", overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for v in vendors:
        table.add_row(
            v.id,
            v.name,
            "\n".join(v.redirect_uris),
            f"{v.created_at:%Y-%m-%d}",
            "active" if v.disabled_at is None else "disabled",
        )
    out.print(table)


@vendors_app.command("disable")
def disable(client_id: Annotated[str, typer.Argument(help="The vendor's client id.")]) -> None:
    """Disable a vendor: it can no longer authenticate. Its record stays."""
    with _registry() as (session, vault):
        vendor = service.disable(session=session, vault=vault, client_id=client_id)
    out.print(
        f"disabled: {vendor.id} ({vendor.name}) since {vendor.disabled_at:%Y-%m-%d %H:%M:%S} UTC",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@vendors_app.command("rotate-secret")
def rotate_secret(
    client_id: Annotated[str, typer.Argument(help="The vendor's client id.")],
) -> None:
    """Give a vendor a new client secret; the old one stops working at once."""
    with _registry() as (session, vault):
        secret = service.rotate_secret(session=session, vault=vault, client_id=client_id)
    _print_once("new client secret", secret)


@vendors_app.command("initial-token")
def initial_token(
    label: Annotated[str, typer.Option(help="Who the token is for, for your records.")],
    ttl_days: Annotated[
        int, typer.Option(help="Days until the token expires.")
    ] = DEFAULT_INITIAL_TOKEN_DAYS,
) -> None:
    """Issue an initial access token, which lets its holder register vendors
    through dynamic registration (RFC 7591) until it expires."""
    if not 1 <= ttl_days <= MAX_INITIAL_TOKEN_DAYS:
        _fail(f"--ttl-days must be between 1 and {MAX_INITIAL_TOKEN_DAYS}")
    with _registry() as (session, vault):
        token = service.issue_initial_access_token(
            session=session, vault=vault, label=label, ttl=timedelta(days=ttl_days)
        )
    _print_once("initial access token", token)
    out.print(f"expires in {ttl_days} days", highlight=False)
