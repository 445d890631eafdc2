"""``vrm-connector``: the vendor's connector to a VRM store."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from connectors import config as configuration
from connectors.config import Config, ConfigError
from connectors.sinks.open import mapping_of, open_sink
from connectors.sinks.sql import SinkError
from connectors.state import State
from connectors.store import Store, StoreError

app = typer.Typer(
    help="Keep a vendor's CRM in step with what customers granted on a VRM store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)

ConfigPath = Annotated[Path, typer.Option("--config", "-c", help="The configuration file.")]
DEFAULT_CONFIG = Path("vrm-connector.toml")
DEFAULT_SECRET_ENV = "VRM_CONNECTOR_SECRET"  # noqa: S105 - a variable's name


def _fail(message: str) -> NoReturn:
    for line in message.splitlines():
        err.print(f"vrm-connector: {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _load(path: Path) -> Config:
    try:
        return configuration.load(path)
    except ConfigError as exc:
        _fail(str(exc))


def check(config: Config) -> list[str]:
    """What stops this configuration from working, one line each: the
    secret, the store, the client, the mapping, the sink."""
    problems: list[str] = []
    try:
        secret = config.client_secret()
    except ConfigError as exc:
        return [str(exc)]
    store = Store(config.store_url, config.client_id, secret)
    try:
        issuer = store.issuer
        if issuer != config.store_url:
            problems.append(f"store_url: the store calls itself {issuer}")
        store.fetch_token()
    except StoreError as exc:
        problems.append(f"store_url: {exc}")
    finally:
        store.close()
    try:
        mapping_of(config)
    except ValueError as exc:
        problems.append(str(exc))
        return problems
    try:
        open_sink(config).close()
    except SinkError as exc:
        problems.append(str(exc))
    return problems


@app.command()
def init(
    store_url: Annotated[str, typer.Option(help="The store's URL (its issuer).")],
    client_id: Annotated[str, typer.Option(help="The vendor's client id (vnd_...).")],
    sink: Annotated[str, typer.Option(help="sql, csv or jsonl.")] = "sql",
    sink_url: Annotated[
        str | None,
        typer.Option(help="sql: a SQLAlchemy URL (postgresql+psycopg://..., sqlite:///...)."),
    ] = None,
    sink_path: Annotated[Path | None, typer.Option(help="csv, jsonl: a folder.")] = None,
    secret_env: Annotated[
        str | None, typer.Option(help="The variable holding the client secret.")
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option(help="A file holding the client secret (mode 0600).")
    ] = None,
    config_path: ConfigPath = DEFAULT_CONFIG,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Write a configuration file, then check it against the store: each
    problem on a line of its own, and exit 1 if there is any. The secret is
    never written: name a variable (default VRM_CONNECTOR_SECRET) or a
    file."""
    if config_path.exists() and not force:
        _fail(f"{config_path} exists; --force replaces it")
    if secret_env is not None and secret_file is not None:
        _fail("give --secret-env or --secret-file, not both")
    if secret_env is None and secret_file is None:
        secret_env = DEFAULT_SECRET_ENV
    data = {
        "store_url": store_url,
        "client_id": client_id,
        "secret_env": secret_env,
        "secret_file": None if secret_file is None else str(secret_file),
        "sink": {
            "kind": sink,
            "url": sink_url,
            "path": None if sink_path is None else str(sink_path),
        },
    }
    data["sink"] = {k: v for k, v in data["sink"].items() if v is not None}  # type: ignore[union-attr]
    problems = configuration.problems_of({k: v for k, v in data.items() if v is not None})
    if problems:
        _fail("\n".join(problems))
    config = Config.model_validate({k: v for k, v in data.items() if v is not None})
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(configuration.dump(config))
    out.print(f"wrote {config_path}")
    problems = check(_load(config_path))
    if problems:
        _fail("\n".join(problems))
    out.print("checked: the store knows this client, and the sink opens")


@app.command("check")
def check_cmd(config_path: ConfigPath = DEFAULT_CONFIG) -> None:
    """Check the configuration against the store and the sink."""
    problems = check(_load(config_path))
    if problems:
        _fail("\n".join(problems))
    out.print("ok")


@app.command()
def listen(
    config_path: ConfigPath = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Address (listen.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (listen.port).")] = None,
) -> None:
    """Receive the store's revocation notices (RFC 8935) and purge what each
    names from the sink. Register this address as the vendor's notify_uri."""
    import uvicorn

    from connectors import listen as receiver

    config = _load(config_path)
    try:
        store = Store(config.store_url, config.client_id, config.client_secret())
        store.keys()  # the store answers, and publishes its keys
        sink = open_sink(config)
    except (ConfigError, StoreError, SinkError) as exc:
        _fail(str(exc))
    state = State(config.state_dir)
    asgi = receiver.app(store, sink, mapping_of(config), state, config.listen.max_age_seconds)
    host = host or config.listen.host
    port = port if port is not None else config.listen.port
    out.print(f"listening for notices on http://{host}:{port}/")
    try:
        uvicorn.run(asgi, host=host, port=port, log_level="warning", access_log=False)
    finally:
        sink.close()
        store.close()


def _token_store(config: Config, *, required: bool) -> Any:
    """The customers' token store, or None when none is configured and
    none is ``required``."""
    from connectors.tokens import TokenStore, TokenStoreError, load_key

    if config.token_key_env is None and config.token_key_file is None and not required:
        return None
    try:
        return TokenStore(config.state_dir, load_key(config.token_key_env, config.token_key_file))
    except TokenStoreError as exc:
        _fail(str(exc))


@app.command("new-token-key")
def new_token_key() -> None:
    """Print a new key for the customers' token store (32 bytes,
    base64url): put it in the variable token_key_env names, or a 0600 file
    token_key_file names."""
    from connectors.tokens import new_key

    typer.echo(new_key())


@app.command()
def authorize(
    config_path: ConfigPath = DEFAULT_CONFIG,
    scope: Annotated[str | None, typer.Option(help="Scopes to ask for (authorize.scope).")] = None,
    purpose: Annotated[
        str | None, typer.Option(help="The purpose, a DPV term (authorize.purpose).")
    ] = None,
    paste: Annotated[bool, typer.Option(help="Paste the address the browser was sent to.")] = False,
    browser: Annotated[bool, typer.Option(help="Open the URL in a browser.")] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the answer.")] = 300,
) -> None:
    """One customer's consent, by the authorization code flow with PKCE:
    prints the URL to send them to, receives the answer on the loopback
    redirect_uri (or by --paste), and keeps their tokens in the encrypted
    token store."""
    from connectors import authorize as flow

    config = _load(config_path)
    held = _token_store(config, required=True)
    try:
        secret = config.client_secret()
        store = Store(config.store_url, config.client_id, secret)
    except ConfigError as exc:
        _fail(str(exc))
    redirect_uri = config.authorize.redirect_uri

    def show(url: str) -> None:
        out.print("Send the customer to:", highlight=False)
        typer.echo(url)
        if browser:
            flow.open_in_browser(url)

    def receive() -> str:
        if paste:
            return str(typer.prompt("The address the browser was sent to"))
        return flow.wait_for_callback(redirect_uri, timeout)

    try:
        token = flow.authorize(
            store,
            secret,
            redirect_uri=redirect_uri,
            scope=scope or config.authorize.scope,
            purpose=purpose or config.authorize.purpose,
            receive=receive,
            show=show,
        )
    except (flow.AuthorizeError, StoreError) as exc:
        _fail(str(exc))
    finally:
        store.close()
    held.put(token)
    out.print(f"authorized: grant {token.grant_id} ({token.scope}); tokens kept encrypted")


@app.command()
def sync(
    config_path: ConfigPath = DEFAULT_CONFIG,
    follow: Annotated[bool, typer.Option(help="Keep polling for changes.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between polls with --follow.")
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per sync.")] = False,
) -> None:
    """Read the store's feed from the saved cursor into the sink: each item
    mapped, applied, and only then the cursor saved. Safe to kill and run
    again: nothing is lost and nothing is held twice. SIGTERM or Ctrl-C
    stops it at the next safe point (a second one at once)."""
    from dlt.common.runtime import signals

    from connectors import sync as syncing

    config = _load(config_path)
    try:
        store = Store(config.store_url, config.client_id, config.client_secret())
        sink = open_sink(config)
    except (ConfigError, StoreError, SinkError) as exc:
        _fail(str(exc))
    state = State(config.state_dir)
    mapping = mapping_of(config)
    held = _token_store(config, required=False)
    # dlt's own signal handling, held across syncs: a signal that arrives
    # while dlt runs is not forgotten when the run ends (dlt forgets it
    # once its outermost run returns), and wakes the wait between syncs.
    with signals.intercepted_signals():
        try:
            while True:
                try:
                    done = _sync_once(syncing, config, store, sink, mapping, state, as_json, held)
                except Exception as exc:
                    if signals.was_signal_received():
                        _stopped(mid_sync=True)
                    _fail(_why(exc))
                if as_json:
                    typer.echo(json.dumps(done))
                else:
                    out.print(
                        f"synced {done['items']} items ({done['items_per_second']:.0f}/s), "
                        f"{done['ops']} changes to the sink"
                    )
                if not follow:
                    return
                signals.sleep(interval)
                if signals.was_signal_received():
                    _stopped(mid_sync=False)
        finally:
            sink.close()
            store.close()


def _stopped(*, mid_sync: bool) -> NoReturn:
    """Stopped by SIGTERM or SIGINT: between syncs a clean exit; during one,
    what was loaded stays loaded and the next sync goes on from there."""
    if mid_sync:
        _fail("stopped during a sync; the next sync goes on from the last load")
    err.print("vrm-connector: stopped", markup=False, highlight=False)
    raise typer.Exit(0)


def _why(exc: BaseException) -> str:
    """A failed sync as one line: the connector's own errors in their words
    (dlt wraps what a step raised), anything else by its class."""
    from dlt.pipeline.exceptions import PipelineStepFailed

    from connectors.tokens import TokenStoreError

    while isinstance(exc, PipelineStepFailed) and exc.exception is not None:
        exc = exc.exception
    known = (StoreError, SinkError, TokenStoreError, ConfigError, RuntimeError)
    cause = exc
    while not isinstance(cause, known) and cause.__cause__ is not None:
        cause = cause.__cause__
    if isinstance(cause, known) and type(cause).__module__.startswith("connectors."):
        return str(cause).splitlines()[0]
    if isinstance(exc, OSError) and exc.strerror:
        # The system's own words and the files it names (the state folder,
        # the sink's), which hold no secret: what an operator needs to act.
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return (
            f"the sync failed ({type(exc).__name__}: {exc.strerror}{': ' + where if where else ''})"
        )
    return f"the sync failed ({type(exc).__name__})"


def _sync_once(
    syncing: Any,
    config: Config,
    store: Store,
    sink: Any,
    mapping: Any,
    state: State,
    quiet: bool,
    held: Any,
) -> dict[str, Any]:
    """One sync until the feed has nothing more, with a progress display on
    a terminal (items and rate: the feed does not say how many remain),
    plain lines per page otherwise, nothing with --json."""
    progress = None
    if quiet:

        def on_page(p: Any) -> None:
            return None
    elif out.is_terminal:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.completed} items"),
            TextColumn("{task.fields[rate]:.0f}/s"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        )
        task = progress.add_task("sync", total=None, rate=0.0)

        def on_page(p: Any) -> None:
            progress.update(task, completed=p.items, rate=p.rate)
    else:

        def on_page(p: Any) -> None:
            out.print(f"{p.items} items, {p.rate:.0f}/s")

    with progress or contextlib.nullcontext():
        done = syncing.run(
            config,
            store,
            sink,
            mapping,
            state,
            limit=config.page_size,
            held=held,
            on_page=on_page,
        )
    return {
        "items": done.items,
        "ops": done.ops,
        "runs": done.runs,
        "items_per_second": round(done.rate, 1),
        "cursor_saved": state.get("cursor") is not None,
    }


@app.command()
def status(
    config_path: ConfigPath = DEFAULT_CONFIG,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the connector did: notices received, purged, refused, replayed;
    the last notices applied."""
    config = _load(config_path)
    state = State(config.state_dir)
    counts = state.counts()
    last = state.notices(10)
    if as_json:
        synced = state.get("synced_at")
        typer.echo(
            json.dumps(
                {
                    "counts": counts,
                    "cursor_age_seconds": None
                    if synced is None
                    else round(time.time() - float(synced)),
                    "customers_held": _held(config),
                    "last_notices": last,
                }
            )
        )
        return
    synced_at = state.get("synced_at")
    age = None if synced_at is None else round(time.time() - float(synced_at))
    if synced_at is None:
        out.print("never synced")
    else:
        out.print(f"last sync: {age} s ago; customers held: {_held(config)}")
    for name in (
        "items_applied",
        "errors",
        "notices_received",
        "notices_purged",
        "notices_noted",
        "notices_refused",
        "notices_replayed",
    ):
        out.print(f"{name.replace('_', ' ')}: {counts.get(name, 0)}")
    if last:
        table = Table(title="last notices applied")
        for column in ("when", "reason", "fields"):
            table.add_column(column, overflow="fold")
        for notice in last:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(notice["purged_at"]))
            table.add_row(when, notice["reason"], ", ".join(notice["fields"]))
        out.print(table)


def _held(config: Config) -> int | None:
    """How many subjects the sink holds (None if it cannot say)."""
    try:
        sink = open_sink(config)
    except SinkError:
        return None
    try:
        return len(sink.subjects())
    finally:
        sink.close()


def main() -> None:
    app()
