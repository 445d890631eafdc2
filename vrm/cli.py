"""The operator's ``vrm`` command."""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from vrm import hooks, migrate, purge
from vrm.accounts import service as accounts
from vrm.accounts.models import Customer
from vrm.accounts.passwords import Passwords
from vrm.backup.cli import backup_app
from vrm.cli_audit import audit_app
from vrm.cli_auditors import auditors_app
from vrm.cli_notices import notices_app
from vrm.cli_vendors import vendors_app
from vrm.crypto.keystore import FileKeyStore
from vrm.db import make_engine
from vrm.dbtypes import utcnow
from vrm.demo import DEMO_EMAIL, load_demo
from vrm.keys import check as key_check
from vrm.keys import layout as key_layout
from vrm.keys import server as server_keys
from vrm.keys.service import RETIRE_GRACE_SECONDS, Vault
from vrm.settings import Settings

app = typer.Typer(
    help="Run and look after a VRM personal data store. Settings come from VRM_* variables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Key management.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
customers_app = typer.Typer(help="Customer accounts.", no_args_is_help=True)
app.add_typer(customers_app, name="customers")
app.add_typer(vendors_app, name="vendors")
app.add_typer(auditors_app, name="auditors")
app.add_typer(audit_app, name="audit")
app.add_typer(notices_app, name="notices")
app.add_typer(backup_app, name="backup")
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        _fail(f"bad setting {where}: {message}" if where else f"bad setting: {message}")


def _fail(message: str) -> NoReturn:
    err.print(f"vrm: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _prepare(settings: Settings, *, create_keys: bool = False) -> FileKeyStore:
    """Create the data dir and the schema, and check the server keys: only
    ``vrm init`` (``create_keys``) creates them, and never one that data
    in the database depends on (vrm/keys/server.py). Idempotent."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        migrate.upgrade(settings)
    except OperationalError as exc:
        _fail(f"cannot reach the database: {exc.orig.__class__.__name__}")
    try:
        return server_keys.open_key_store(settings, create=create_keys)
    except server_keys.ServerKeyError as exc:
        _fail(str(exc))


@app.command()
def init() -> None:
    """Create ./var (or VRM_DATA_DIR), the key store and the database, or
    leave them as they are if they exist."""
    settings = _settings()
    _prepare(settings, create_keys=True)
    out.print(f"ready: data in {settings.data_dir}, keys in {settings.key_dir_resolved}")


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply pending database migrations."""
    settings = _settings()
    _prepare(settings)
    out.print("database schema is up to date")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (VRM_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (VRM_PORT).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs). Applies migrations first.
    With several workers, each takes a listening socket of its own where the
    platform allows (SO_REUSEPORT), and the background work runs once, in
    the supervising process (docs/operations.md#throughput-and-workers)."""
    from vrm import serving

    if workers < 1:
        _fail("--workers must be 1 or more")
    settings = _settings()
    store = _prepare(settings)
    key_layout.warn_if_keys_beside_database(settings)
    host = host or settings.host
    port = port or settings.port
    out.print(f"serving on http://{host}:{port} (API docs at /docs)")
    status = serving.serve(settings, store, host, port, workers)
    if status:
        raise typer.Exit(status)


@app.command()
def worker() -> None:
    """Run the background work (purge, audit checkpoints, expiry and
    revocation notices) without serving HTTP, until stopped (Ctrl-C or
    SIGTERM). For deployments whose servers set VRM_BACKGROUND_JOBS=false;
    several may run at once."""
    import signal
    import threading

    from vrm import background

    settings = _settings()
    store = _prepare(settings)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    jobs = background.start_apart(settings, store)
    out.print(f"worker running {len(jobs.jobs)} background jobs; stop with Ctrl-C")
    try:
        stopping.wait()
    finally:
        jobs.stop()
    out.print("worker stopped")


@app.command()
def demo() -> None:
    """Load the demo customer (ana@example.org) with a profile, preferences
    and history. Prints the password (and the recovery key of a
    customer-held root key) once, when the customer is created."""
    settings = _settings()
    store = _prepare(settings)
    engine = make_engine(settings)
    with Session(engine) as session:
        made = load_demo(
            session=session, vault=Vault(store), passwords=Passwords(settings), settings=settings
        )
    engine.dispose()
    if made is None:
        out.print(f"demo customer {DEMO_EMAIL} already exists (its password was shown once)")
    else:
        out.print(f"demo customer created: {DEMO_EMAIL}")
        out.print(f"password (shown only now): {made.password}", markup=False, highlight=False)
        if made.recovery_key is not None:
            out.print(
                f"recovery key (shown only now): {made.recovery_key}",
                markup=False,
                highlight=False,
            )


@keys_app.command("rotate")
def keys_rotate(
    grace: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds the old root key versions stay after the last rewrap, "
            "for reads that began before it.",
        ),
    ] = RETIRE_GRACE_SECONDS,
) -> None:
    """Rewrap every data key the server's root keys wrap under a new root
    key version (a customer-held root key is the customer's, and not
    counted). Safe while the server runs: old versions stay readable until
    rewrapping completes, and --grace seconds more."""
    settings = _settings()
    store = _prepare(settings)
    engine = make_engine(settings)
    with Session(engine) as session:
        report = Vault(store).rotate(session, grace_seconds=grace, on_rewrap=hooks.ON_REWRAP)
    engine.dispose()
    out.print(
        f"rotated: {report.customers} customers, {report.data_keys} data keys rewrapped, "
        f"{report.retired_versions} old root key versions destroyed"
    )


def _custody_lines(custody: str, customers: key_check.CustomerKeys) -> list[str]:
    """How many customers hold their own root keys (which the server cannot
    open, so does not check), and how many the server still holds: none of
    them a problem."""
    lines = []
    held, server = customers.customer_held, customers.server_held
    if held == 1:
        lines.append("1 customer holds their own root key")
    elif held:
        lines.append(f"{held} customers hold their own root keys")
    whose = "1 customer's root key is" if server == 1 else f"{server} customers' root keys are"
    if server and custody == "customer":
        lines.append(
            f"{whose} still held by the server; "
            + ("it moves to them" if server == 1 else "they move to their customers")
            + " at their next log-in"
        )
    elif server:
        lines.append(f"{whose} held by the server")
    return lines


@keys_app.command("check")
def keys_check() -> None:
    """List the server keys, the customers and the grants whose keys are
    missing, unreadable or wrong (exit code 1 if there are any), and how many
    customers hold their own root keys and how many the server holds."""
    settings = _settings()
    store = FileKeyStore(settings.key_dir_resolved, cache_seconds=0)
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            server = server_keys.problems(store, engine)
            customers = key_check.customer_keys(session=session, keystore=store)
            escrows = key_check.escrow_keys(session=session, keystore=store)
    except OperationalError as exc:
        _fail(f"cannot read the database: {exc.orig.__class__.__name__}")
    finally:
        engine.dispose()
    for line in server:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for problem in customers.problems:
        line = f"customer {problem.customer_id}: {problem.kind}: {problem.detail}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for escrow in escrows:
        line = f"grant {escrow.grant_id}: {escrow.kind}: {escrow.detail}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for line in _custody_lines(settings.key_custody, customers):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if server or customers.problems or escrows:
        raise typer.Exit(1)
    out.print(
        "every server key, root key and escrow key the server holds is present and opens its data",
        soft_wrap=True,
    )


@app.command("purge")
def purge_cmd() -> None:
    """Delete what is past its retention period (VRM_RETAIN_*), once, and
    print how many rows of each kind went. For cron, when VRM_PURGE_INTERVAL_SECONDS
    is 0 or the servers should not do it."""
    settings = _settings()
    engine = make_engine(settings)
    try:
        removed = purge.purge(engine, settings, utcnow())
    except OperationalError as exc:
        _fail(f"cannot purge the database: {exc.orig.__class__.__name__}")
    finally:
        engine.dispose()
    for kind, count in removed.items():
        out.print(f"{kind}: {count}", markup=False, highlight=False)


@customers_app.command("erase")
def customers_erase(customer_id: str) -> None:
    """Erase an account: its root keys first, then its rows; vendors hear of
    it on their feeds. Works when the customer's keys are already gone."""
    settings = _settings()
    store = _prepare(settings)
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            if session.get(Customer, customer_id) is None:
                _fail(f"no customer with id {customer_id}")
            accounts.erase(
                session=session,
                vault=Vault(store),
                settings=settings,
                customer_id=customer_id,
                on_erase=hooks.ON_ERASE,
            )
    finally:
        engine.dispose()
    out.print(f"erased customer {customer_id}", markup=False, highlight=False)


def main() -> None:
    os.umask(0o077)  # keys, database and logs are for this user only
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
