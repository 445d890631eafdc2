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

from vrm import migrate
from vrm.accounts.passwords import Passwords
from vrm.backup.cli import backup_app
from vrm.cli_vendors import vendors_app
from vrm.crypto.keystore import FileKeyStore
from vrm.db import make_engine
from vrm.demo import DEMO_EMAIL, load_demo
from vrm.keys.service import Vault
from vrm.settings import Settings

app = typer.Typer(
    help="Run and look after a VRM personal data store. Settings come from VRM_* variables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Key management.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(vendors_app, name="vendors")
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


def _prepare(settings: Settings) -> FileKeyStore:
    """Create the data dir, the key store and the schema; idempotent."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = FileKeyStore(settings.key_dir_resolved)
    store.init()
    try:
        migrate.upgrade(settings)
    except OperationalError as exc:
        _fail(f"cannot reach the database: {exc.orig.__class__.__name__}")
    return store


@app.command()
def init() -> None:
    """Create ./var (or VRM_DATA_DIR), the key store and the database, or
    leave them as they are if they exist."""
    settings = _settings()
    _prepare(settings)
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
    """Serve the HTTP API (OpenAPI docs at /docs). Applies migrations first."""
    import uvicorn

    settings = _settings()
    _prepare(settings)
    host = host or settings.host
    port = port or settings.port
    out.print(f"serving on http://{host}:{port} (API docs at /docs)")
    # X-Forwarded-For and -Proto only from the proxies the operator lists:
    # from anyone else they would let a client choose the address the login
    # throttle counts and the scheme that marks cookies Secure. uvicorn's
    # own default trusts 127.0.0.1 (and reads FORWARDED_ALLOW_IPS).
    proxies = settings.trusted_proxy_list
    uvicorn.run(
        "vrm.asgi:app",
        host=host,
        port=port,
        workers=workers,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies,
        log_level="info",
        access_log=False,
    )


@app.command()
def demo() -> None:
    """Load the demo customer (ana@example.org) with a profile, preferences
    and history. Prints the password once, when the customer is created."""
    settings = _settings()
    store = _prepare(settings)
    engine = make_engine(settings)
    with Session(engine) as session:
        password = load_demo(session=session, vault=Vault(store), passwords=Passwords(settings))
    engine.dispose()
    if password is None:
        out.print(f"demo customer {DEMO_EMAIL} already exists (its password was shown once)")
    else:
        out.print(f"demo customer created: {DEMO_EMAIL}")
        out.print(f"password (shown only now): {password}", markup=False, highlight=False)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Rewrap every data key under a new root key version. Safe while the
    server runs: old versions stay readable until rewrapping completes."""
    settings = _settings()
    store = _prepare(settings)
    engine = make_engine(settings)
    with Session(engine) as session:
        report = Vault(store).rotate(session)
    engine.dispose()
    out.print(
        f"rotated: {report.customers} customers, {report.data_keys} data keys rewrapped, "
        f"{report.retired_versions} old root key versions destroyed"
    )


def main() -> None:
    os.umask(0o077)  # keys, database and logs are for this user only
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
