"""Where the key store lies beside the database.

Crypto-shredding holds only while the key store and the database are not
copied together: a copy of a folder holding both keeps every erased
customer's root keys next to their ciphertext. The embedded default
(``<data dir>/keys`` beside ``<data dir>/vrm.db``) is simple on purpose;
outside development ``vrm serve`` says once that it is not the production
layout (docs/keys.md, "Where the keys live").
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from vrm.settings import Settings

logger = logging.getLogger(__name__)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_development(settings: Settings) -> bool:
    """Development: the issuer is on a loopback address, where nobody but
    the machine's own user can reach the server (and where settings allow
    plain http)."""
    return urlsplit(settings.issuer).hostname in _LOOPBACK


def database_folder(settings: Settings) -> Path | None:
    """The folder of the SQLite database file; None for PostgreSQL, whose
    files are the database server's."""
    if not settings.is_sqlite:
        return None
    path = make_url(settings.database_url_resolved).database
    if not path or path == ":memory:":
        return None
    return Path(path).resolve().parent


def keys_beside_database(settings: Settings) -> bool:
    """The key store lies inside the database file's folder, so a copy of
    that folder copies both."""
    folder = database_folder(settings)
    return folder is not None and settings.key_dir_resolved.resolve().is_relative_to(folder)


def warn_if_keys_beside_database(settings: Settings) -> None:
    """At start-up: one warning line when the key store lies beside the
    database outside development. Names folders only."""
    if is_development(settings) or not keys_beside_database(settings):
        return
    logger.warning(
        "key store %s is inside the database's folder %s: a copy of that folder holds "
        "erased customers' keys beside their data; set VRM_KEY_DIR to another disk "
        "(docs/keys.md)",
        settings.key_dir_resolved.resolve(),
        database_folder(settings),
    )
