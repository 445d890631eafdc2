"""``vrm notices``: the operator's view of revocation notices
(consent/notices, docs/notices.md).

A notice the vendor did not acknowledge within a day is parked: ``list
--state parked`` shows them, ``retry`` puts them back in the queue for
another day of attempts (after the vendor fixed its endpoint, say). The
vendor's feed tells it of every withdrawal regardless.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from consent.notices import outbox
from consent.notices.models import DELIVERED, PARKED, PENDING, VendorNotice
from vrm.cli_vendors import _fail, _registry, _when

notices_app = typer.Typer(
    help="Revocation notices pushed to vendors: where each stands.",
    no_args_is_help=True,
)
out = Console()
STATES = (PENDING, DELIVERED, PARKED)


def _public(notice: VendorNotice) -> dict[str, Any]:
    return {
        "seq": notice.seq,
        "vendor": notice.vendor_id,
        "state": notice.state,
        "attempts": notice.attempts,
        "last_outcome": notice.outcome,
        "created_at": _when(notice.created_at),
        "due_at": _when(notice.due_at) if notice.state == PENDING else None,
        "delivered_at": _when(notice.delivered_at),
    }


@notices_app.command("list")
def list_cmd(
    state: Annotated[
        str | None, typer.Option(help="Only these: pending, delivered or parked.")
    ] = None,
    vendor: Annotated[str | None, typer.Option(help="Only this vendor's (client id).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, oldest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List notices, oldest first: their vendor, state, attempts and what
    the last attempt met. Names no customer."""
    if state is not None and state not in STATES:
        _fail(f"--state must be one of {', '.join(STATES)}, not {state!r}")
    with _registry() as (session, _vault):
        found = outbox.listed(session, state=state, vendor_id=vendor, limit=limit)
        rows = [_public(n) for n in found]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        out.print("no notices")
        return
    table = Table()
    for name in ("seq", "vendor", "state", "attempts", "last outcome", "since"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["seq"]),
            row["vendor"],
            row["state"],
            str(row["attempts"]),
            row["last_outcome"] or "",
            row["created_at"],
        )
    out.print(table)


@notices_app.command("retry")
def retry(
    seq: Annotated[int | None, typer.Argument(help="The parked notice to retry.")] = None,
    vendor: Annotated[str | None, typer.Option(help="Every parked notice of this vendor.")] = None,
    all_parked: Annotated[bool, typer.Option("--all", help="Every parked notice.")] = False,
) -> None:
    """Queue parked notices again, due now, with another day of attempts."""
    if (seq is not None) + (vendor is not None) + all_parked != 1:
        _fail("name one parked notice, or --vendor CLIENT_ID, or --all")
    with _registry() as (session, _vault):
        count = outbox.retry(session, seq=seq, vendor_id=vendor)
    if seq is not None and count == 0:
        _fail(f"no parked notice {seq}")
    out.print(f"{count} notice{'s' if count != 1 else ''} queued again")
