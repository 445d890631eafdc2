"""``vrm audit``: the operator's and the auditor's side of the audit log
(docs/audit.md).

``checkpoint`` signs the log now; ``export`` copies it out as a bundle;
``verify`` checks a bundle offline with nothing but the bundle (and a key
or a pinned checkpoint to trust), saying what it checked, and exits 1 at
the first failure, naming it; ``witness`` runs a cosigner that keeps the
operator to one history. Verifying and witnessing need no settings,
database or key store: an auditor runs them on their own machines.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine

from consent.audit import bundle, tree
from consent.audit.cosignature import CosignatureSigner
from consent.audit.note import NoteError, Signer
from consent.audit.witness import Witness
from consent.audit.witness import app as witness_app
from vrm.cli_vendors import _fail
from vrm.db import make_engine

audit_app = typer.Typer(
    help="The audit log: sign a checkpoint, export a bundle, verify one.",
    no_args_is_help=True,
)
out = Console()


@contextmanager
def _progress() -> Iterator[bundle.Progress]:
    """A progress bar on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        yield lambda _what, _done, _total: None
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def advance(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    with bar:
        yield advance


def _signer_and_engine() -> tuple[Signer, Engine]:
    from vrm import cli

    settings = cli._settings()
    store = cli._prepare(settings)
    return tree.signer(settings, store.server_key(tree.KEY_NAME)), make_engine(settings)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the log now, if it grew since the last one."""
    signer, engine = _signer_and_engine()
    try:
        made = tree.sign_checkpoint(engine, signer)
    finally:
        engine.dispose()
    if made is None:
        out.print("no new entries: the latest checkpoint stands")
    else:
        out.print(f"signed a checkpoint of {made.size} entries", highlight=False)


@audit_app.command("export")
def export(
    folder: Annotated[Path, typer.Argument(help="A new or empty folder to write the bundle to.")],
    since: Annotated[
        int | None,
        typer.Option(help="Start at the checkpoint of this many entries (an earlier export's)."),
    ] = None,
) -> None:
    """Sign a checkpoint of what the log holds now, then write the bundle:
    the verifier key, the checkpoint, every tile and the entries."""
    signer, engine = _signer_and_engine()
    try:
        tree.sign_checkpoint(engine, signer)
        with _progress() as progress:
            done = bundle.export(
                engine,
                folder,
                verifier_key=signer.verifier_key(),
                since=since,
                progress=progress,
            )
    except ValueError as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    out.print(
        f"exported {done.entries} entries (from {done.since} to {done.size}) "
        f"and {done.tiles} tiles to {folder}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@audit_app.command("verify")
def verify(
    folder: Annotated[Path, typer.Argument(help="The bundle (from vrm audit export).")],
    pin: Annotated[
        Path | None,
        typer.Option(help="A checkpoint you kept from before: the bundle must extend it."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            help="The log's verifier key, from a source you trust (default: the bundle's)."
        ),
    ] = None,
    witness_key: Annotated[
        list[str] | None,
        typer.Option(help="A witness's verifier key: its cosignature must verify. Repeatable."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a bundle offline: every signature, tile, entry and leaf hash,
    the pinned checkpoint as a prefix, and every read inside its grant."""
    try:
        pinned = None if pin is None else pin.read_bytes()
    except OSError as exc:
        _fail(f"cannot read {pin}: {exc.strerror}")
    try:
        with _progress() as progress:
            report = bundle.verify(
                folder, key=key, pin=pinned, witnesses=witness_key or (), progress=progress
            )
    except bundle.VerifyError as exc:
        _fail(f"audit verify failed: {exc}")
    if as_json:
        typer.echo(json.dumps(report.__dict__))
        return
    lines = [
        f"log {report.origin}: {report.size} entries, checkpoint signed by its key"
        + (f", cosigned by {report.witnesses} witnesses" if report.witnesses else "")
        + (
            f" ({report.unchecked_signatures} other signatures not checked)"
            if report.unchecked_signatures
            else ""
        ),
        f"{report.tiles} tiles hash to the checkpoint's root",
        f"{report.entries} entries (from {report.since}) match their leaves and are canonical",
        f"{report.accesses} reads and deposits fall inside their grants"
        + (
            f"; {report.unchecked_accesses} under grants given before the bundle"
            if report.unchecked_accesses
            else ""
        ),
    ]
    if report.pinned is not None:
        lines.append(f"the pinned checkpoint of {report.pinned} entries is a prefix of the log")
    for line in lines:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.print("ok", highlight=False)


def _witness_seed(path: Path) -> bytes:
    """The witness's key seed, made (0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(secrets.token_bytes(32))
    seed = path.read_bytes()
    if len(seed) != 32:
        _fail(f"{path} is not a witness key (32 bytes)")
    return seed


@audit_app.command("witness")
def witness(
    name: Annotated[str, typer.Option(help="The witness's name, e.g. witness.example.org/w1.")],
    log_key: Annotated[
        list[str], typer.Option(help="Verifier key of a log to witness. Repeatable.")
    ],
    key_file: Annotated[
        Path, typer.Option(help="The witness's key seed (made, mode 0600, if missing).")
    ] = Path("witness.key"),
    state: Annotated[
        Path, typer.Option(help="Where the witness keeps the last checkpoint of each log.")
    ] = Path("witness.json"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    print_key: Annotated[
        bool, typer.Option("--print-key", help="Print the witness's verifier key and stop.")
    ] = False,
) -> None:
    """Run a witness (C2SP tlog-witness): it cosigns a log's checkpoint only
    when it extends the last one it cosigned, and refuses, saying why,
    otherwise. Give the server its URL and verifier key in
    VRM_AUDIT_WITNESSES."""
    try:
        signer = CosignatureSigner(name, _witness_seed(key_file))
        cosigner = Witness(signer, log_key, state)
    except (NoteError, ValueError) as exc:
        _fail(str(exc))
    if print_key:
        typer.echo(signer.verifier_key())
        return
    out.print(f"witness {name}: {signer.verifier_key()}", markup=False, highlight=False)
    out.print(f"listening on http://{host}:{port}/add-checkpoint", markup=False, highlight=False)
    uvicorn.run(witness_app(cosigner), host=host, port=port, log_level="warning")
