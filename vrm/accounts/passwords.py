"""Argon2id password checks with equal cost for unknown accounts.

Two kinds of stored password: argon2-cffi's own hash (``$argon2id$...``)
for customers whose root key the server holds, and the customer-held form
(vrm/keys/custody.py), whose one Argon2id run also gives the key that
unwraps the root key. Both cost the same run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from vrm.keys import custody
from vrm.settings import Settings


@dataclass(frozen=True)
class Verified:
    """A password that matched. ``kek`` unwraps the customer's root key;
    None for a server-held one."""

    kek: bytes | None


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self.cost = custody.Argon2Cost(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._hasher = PasswordHasher(
            time_cost=self.cost.time_cost,
            memory_cost=self.cost.memory_kib,
            parallelism=self.cost.parallelism,
            type=Type.ID,
        )
        # Verified against when the email is unknown, so that an unknown email
        # and a wrong password cost the same time (no account enumeration).
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        """A server-held customer's stored password."""
        return self._hasher.hash(password)

    def new_verifier(self, password: str) -> tuple[str, bytes]:
        """A customer-held customer's stored password, and the key that
        wraps their root key."""
        return custody.new_verifier(password, self.cost)

    def check(self, stored: str | None, password: str) -> Verified | None:
        """Whether ``password`` matches ``stored`` (None: no such account,
        checked against a dummy at the same cost)."""
        if stored is not None and custody.is_customer_held(stored):
            kek = custody.check(stored, password)
            return None if kek is None else Verified(kek)
        try:
            ok = self._hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        return Verified(None) if ok and stored is not None else None

    def verify(self, stored_hash: str | None, password: str) -> bool:
        return self.check(stored_hash, password) is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        if custody.is_customer_held(stored_hash):
            return custody.cost_of(stored_hash) != self.cost
        return self._hasher.check_needs_rehash(stored_hash)
