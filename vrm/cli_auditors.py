"""``vrm auditors``: the clients that read the audit log (docs/audit.md).

An auditor takes client-credentials tokens with the scope ``audit:read``
and uses ``/audit/v1/...``; it can never read a customer's data, and sees
customers only by their pseudonyms in the log. Its secret is printed once,
when it is made.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from consent.vendors import service
from vrm.cli_vendors import _print_once, _public, _registry, out

auditors_app = typer.Typer(
    help="Auditors: the clients that read the audit log, and nothing else.",
    no_args_is_help=True,
)


@auditors_app.command("add")
def add(
    name: Annotated[str, typer.Option(help="Who the auditor is, for your records.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object, secret included.")
    ] = False,
) -> None:
    """Register an auditor. Prints its client id and secret; the secret is
    shown only now."""
    with _registry() as (session, vault):
        auditor, secret = service.register_auditor(session=session, vault=vault, name=name)
    if as_json:
        typer.echo(
            json.dumps({"client_id": auditor.id, "client_secret": secret} | _public(auditor))
        )
        return
    out.print(f"registered auditor: {auditor.name}", markup=False, highlight=False)
    out.print(f"client id: {auditor.id}", markup=False, highlight=False, soft_wrap=True)
    _print_once("client secret", secret)
    out.print("token: POST /oauth/token grant_type=client_credentials scope=audit:read")


@auditors_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the auditors, disabled ones included. Shows no secret."""
    with _registry() as (session, _vault):
        auditors = service.list_vendors(session=session, role="auditor")
    if as_json:
        typer.echo(json.dumps([_public(a) for a in auditors]))
        return
    if not auditors:
        out.print("no auditors registered")
        return
    table = Table()
    table.add_column("client id", no_wrap=True)
    table.add_column("name", overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for a in auditors:
        status = "active" if a.disabled_at is None else "disabled"
        table.add_row(a.id, a.name, f"{a.created_at:%Y-%m-%d}", status)
    out.print(table)


@auditors_app.command("disable")
def disable(client_id: Annotated[str, typer.Argument(help="The auditor's client id.")]) -> None:
    """Disable an auditor: it can no longer authenticate. Its record stays."""
    with _registry() as (session, vault):
        auditor = service.disable(session=session, vault=vault, client_id=client_id)
    out.print(
        f"disabled: {auditor.id} ({auditor.name})", markup=False, highlight=False, soft_wrap=True
    )
