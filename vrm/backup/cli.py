"""``vrm backup``: create, restore, new-key (docs/operations.md, Backups)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from vrm.backup import archive
from vrm.backup.sealing import BackupError, new_key, parse_key
from vrm.settings import Settings

backup_app = typer.Typer(
    help="Backups of the database and the key store together, sealed under your key.",
    no_args_is_help=True,
)

KeyFile = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="File holding the backup key (else VRM_BACKUP_KEY).",
        dir_okay=False,
    ),
]


def _fail(message: str) -> NoReturn:
    # vrm.cli imports this module to register it: look its helpers up late.
    from vrm import cli

    cli.err.print(f"vrm: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc.__class__.__name__}{where}"


def _settings() -> Settings:
    from vrm import cli

    return cli._settings()


def _key(settings: Settings, key_file: Path | None) -> bytes:
    if key_file is not None:
        try:
            return parse_key(key_file.read_text())
        except OSError as exc:
            _fail(f"cannot read the key file {key_file}: {exc.strerror}")
    if settings.backup_key is None:
        _fail("no backup key: set VRM_BACKUP_KEY or pass --key-file (see `vrm backup new-key`)")
    return parse_key(settings.backup_key.get_secret_value())


@backup_app.command("new-key")
def new_key_cmd() -> None:
    """Print a new random backup key. Keep it apart from the backups."""
    print(new_key())  # noqa: T201 - the one line a script reads


@backup_app.command("create")
def create(
    folder: Annotated[Path, typer.Argument(help="A new (or empty) folder for this backup.")],
    key_file: KeyFile = None,
) -> None:
    """Copy the database and the key store, consistently, sealed under the
    backup key. Safe while the server runs."""
    settings = _settings()
    try:
        made = archive.create(settings, _key(settings, key_file), folder)
    except BackupError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(exc))
    from vrm import cli

    cli.out.print(
        f"backup written to {folder}: {made.customers} customers, {made.root_keys} root keys",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if made.missing_root_keys:
        cli.err.print(
            f"vrm: warning: {made.missing_root_keys} root keys the database needs are missing "
            "from the key store; those customers' data cannot be read from this backup",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@backup_app.command("restore")
def restore(
    folder: Annotated[Path, typer.Argument(help="A folder made by `vrm backup create`.")],
    key_file: KeyFile = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a store that holds data.")
    ] = False,
    without_journal: Annotated[
        bool,
        typer.Option(
            "--without-journal",
            help="Restore although the erasure journal is missing (erased customers come back).",
        ),
    ] = False,
) -> None:
    """Put a backup's database and key store back, then erase again every
    customer in the erasure journal. Stop the servers first."""
    settings = _settings()
    try:
        done = archive.restore(
            settings,
            _key(settings, key_file),
            folder,
            force=force,
            without_journal=without_journal,
        )
    except BackupError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(exc))
    from vrm import cli

    cli.out.print(
        f"restored the backup of {done.created_at}; "
        f"{done.erased_again} customers erased again from the journal",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
