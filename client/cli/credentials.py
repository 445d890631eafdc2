"""Where ``vrm-me`` keeps its login: ``credentials.json`` in the user's
config directory (``platformdirs.user_config_dir("vrm-me")``, or
``$VRM_ME_CONFIG_DIR``), readable by the user alone (0600, in a 0700
directory), holding the server's URL, the tokens and when the access token
runs out. Every save writes a new file and renames it over the old one, so
a crash never leaves half a file, and a refresh (whose old refresh token is
spent) is never lost between two writes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType

import platformdirs

from client.device import Tokens

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

ENV = "VRM_ME_CONFIG_DIR"
FILENAME = "credentials.json"


class CredentialsError(Exception):
    """The credentials file is missing or cannot be read."""


@dataclass(frozen=True)
class Credentials:
    server: str
    tokens: Tokens


def directory() -> Path:
    configured = os.environ.get(ENV)
    return Path(configured) if configured else Path(platformdirs.user_config_dir("vrm-me"))


def path() -> Path:
    return directory() / FILENAME


def load() -> Credentials:
    """The saved login; CredentialsError if there is none."""
    try:
        raw = json.loads(path().read_text(encoding="utf-8"))
        return Credentials(server=str(raw["server"]), tokens=Tokens(**raw["tokens"]))
    except FileNotFoundError:
        raise CredentialsError("not logged in: run vrm-me login --server URL") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise CredentialsError(
            f"cannot read {path()}: run vrm-me login again (it replaces the file)"
        ) from None


def write_private(target: Path, body: bytes) -> None:
    """``body`` into ``target``, readable by its owner alone (0600), whole
    or not at all: a temporary file beside it, synced, then renamed over it.
    OSError if it cannot be written."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(body)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save(credentials: Credentials) -> None:
    """Write the login atomically, mode 0600, in a 0700 folder."""
    folder = directory()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = json.dumps(
        {"server": credentials.server, "tokens": asdict(credentials.tokens)}, indent=2
    ).encode()
    write_private(folder / FILENAME, body)


@contextmanager
def held() -> Iterator[None]:
    """One vrm-me at a time uses the login: a refresh spends the refresh
    token, and a second process refreshing with the same one would be
    taken for a replay, which ends the whole login. So each command holds
    an exclusive lock on ``credentials.lock`` from reading the login to
    its last request (POSIX; elsewhere, commands are not serialised)."""
    folder = directory()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / "credentials.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def delete() -> bool:
    """Forget the login; whether there was one."""
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
