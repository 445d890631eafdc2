"""The customers' tokens the connector holds, encrypted at rest.

``vrm-connector authorize`` stores each customer's tokens here (the
refresh token is what matters: it reads that customer's data while they
are away). The file, ``tokens.bin`` in the state folder (mode 0600), is one
AES-256-GCM sealed JSON document; the key is 32 bytes, base64url, from the
variable ``token_key_env`` names or the file ``token_key_file`` names (mode
0600), never from the configuration itself. A wrong key or a changed file
is refused, not read as empty.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_AAD = b"vrm-connector tokens v1"
NONCE = 12


class TokenStoreError(RuntimeError):
    """The token store cannot be opened (one line, never a key)."""


@dataclass
class Held:
    """One customer's grant, as the vendor holds it."""

    subject: str
    grant_id: str
    scope: str
    access_token: str
    refresh_token: str | None
    expires_at: float


def new_key() -> str:
    """A fresh key, as the variable or key file holds it."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def load_key(env: str | None, file: Path | None) -> bytes:
    if env is not None:
        text = os.environ.get(env)
        if not text:
            raise TokenStoreError(f"the token store's key variable {env} is not set")
    elif file is not None:
        try:
            if os.stat(file).st_mode & 0o077:
                raise TokenStoreError(f"the token key file {file} must be private (chmod 600)")
            text = file.read_text().strip()
        except OSError as exc:
            raise TokenStoreError(
                f"cannot read the token key file {file}: {exc.strerror}"
            ) from None
    else:
        raise TokenStoreError("no key for the token store: set token_key_env or token_key_file")
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise TokenStoreError("the token store's key must be 32 bytes, base64url")
    return key


class TokenStore:
    def __init__(self, folder: Path, key: bytes) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = folder / "tokens.bin"
        self._aead = AESGCM(key)

    def read(self) -> dict[str, Held]:
        if not self.path.exists():
            return {}
        sealed = self.path.read_bytes()
        try:
            plain = self._aead.decrypt(sealed[:NONCE], sealed[NONCE:], _AAD)
        except (InvalidTag, ValueError):
            raise TokenStoreError(
                f"{self.path} does not open with this key (another key, or the file changed)"
            ) from None
        data: dict[str, Any] = json.loads(plain)
        return {subject: Held(**held) for subject, held in data.items()}

    def write(self, held: dict[str, Held]) -> None:
        plain = json.dumps({s: asdict(h) for s, h in held.items()}).encode()
        nonce = secrets.token_bytes(NONCE)
        sealed = nonce + self._aead.encrypt(nonce, plain, _AAD)
        fd, temporary = tempfile.mkstemp(prefix=".tokens.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(sealed)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def put(self, held: Held) -> None:
        found = self.read()
        found[held.subject] = held
        self.write(found)

    def drop(self, subject: str) -> None:
        found = self.read()
        if found.pop(subject, None) is not None:
            self.write(found)
