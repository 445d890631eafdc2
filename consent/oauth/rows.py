"""Vendor, grant and customer rows as the authorization server reads them.

They are handed on as instances of the table models (:func:`loaded`), so
the rest of the code sees the same ``Vendor`` and ``Grant`` as everywhere
else; those instances belong to no session and are only read (changes go
through their own services). Statements are built once and run on the
driver's cursor (vrm/storage/statements.py), like the token store's
(consent/oauth/store.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.orm import configure_mappers, instrumentation
from sqlalchemy.orm.instrumentation import ClassManager
from sqlmodel import SQLModel

from consent.grants.models import Grant
from consent.vendors.models import Vendor
from vrm.accounts.models import Customer
from vrm.storage.groupcommit import steady_reads
from vrm.storage.statements import Statement

M = TypeVar("M", bound=SQLModel)


def table_of(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)  # noqa: S101 - every table model has one
    return table


VENDOR = table_of(Vendor)
GRANT = table_of(Grant)
CUSTOMER = table_of(Customer)
_VENDOR_BY_ID = Statement(select(VENDOR).where(VENDOR.c.id == bindparam("id")))
_GRANT_BY_ID = Statement(select(GRANT).where(GRANT.c.id == bindparam("id")))
_CUSTOMER_BY_ID = Statement(select(CUSTOMER).where(CUSTOMER.c.id == bindparam("id")))


@cache
def _manager(model: type[SQLModel]) -> ClassManager[Any]:
    # A worker process whose first request is a token request has not used
    # the ORM yet, and attributes of unconfigured mappers cannot be read.
    configure_mappers()
    return instrumentation.manager_of_class(model)


def loaded(model: type[M], row: Mapping[Any, Any]) -> M:
    """An instance of ``model`` holding ``row``, as a query through a
    session would return it but outside any session (so read only).
    Skips model validation: the row came from the table."""
    obj: M = _manager(model).new_instance()
    obj.__dict__.update(row)
    object.__setattr__(obj, "__pydantic_fields_set__", set(row))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


# -- vendors, customers, grants --------------------------------------------


class _Decoded(Generic[M]):
    """Instances of a table model by their row exactly as the database
    returned it, so that an unchanged row is not decoded again (its JSON
    lists and datetimes, and the instance: much of the cost of reading it,
    docs/performance.md#the-drivers-cursor-and-decoding). Any change to the
    row is a new key; the instance for a key is the same one every time,
    and nothing changes a loaded instance. (SQLite
    only: psycopg hands JSON columns back decoded, as unhashable lists, and
    those rows are decoded every time.)"""

    KEPT = 1024

    def __init__(self, model: type[M], names: Sequence[str]) -> None:
        self.model = model
        self.names = tuple(names)
        self._kept: dict[tuple[Any, ...], M] = {}

    def get(self, raw: tuple[Any, ...], decode: Callable[[], Sequence[Any]]) -> M:
        """The instance for ``raw``; ``decode`` gives its values converted
        by their column types, when it is not kept yet."""
        try:
            found = self._kept.get(raw)
        except TypeError:
            return self._load(decode())
        if found is None:
            if len(self._kept) >= self.KEPT:
                self._kept.clear()
            found = self._kept[raw] = self._load(decode())
        return found

    def _load(self, values: Sequence[Any]) -> M:
        return loaded(self.model, dict(zip(self.names, values, strict=True)))


# Shared with the token store, which reads a token's vendor and grant in
# one join with it.
VENDORS = _Decoded(Vendor, tuple(c.name for c in VENDOR.c))
GRANTS = _Decoded(Grant, tuple(c.name for c in GRANT.c))


def vendor(conn: Connection, vendor_id: str) -> Vendor | None:
    """The vendor, read on every call: a changed secret, a disabled vendor
    or new redirect URIs count at once. Only the decoding of an unchanged
    row is skipped (:class:`_Decoded`), and, within one group commit on
    SQLite, a second read of a row that cannot have changed since the first
    (vrm.storage.groupcommit.steady_reads)."""
    if "\x00" in vendor_id:
        # No client id holds a NUL, and PostgreSQL text cannot: asked for
        # one, psycopg refuses the statement (a 500 at /oauth/authorize).
        return None
    steady = steady_reads(conn, VENDOR)
    key = ("vendor", vendor_id)
    if steady is not None and key in steady:
        kept: Vendor | None = steady[key]
        return kept
    raw = _VENDOR_BY_ID.first_raw(conn, {"id": vendor_id})
    found = None
    if raw is not None:
        found = VENDORS.get(raw, lambda: _VENDOR_BY_ID.converted(conn, raw, 0, len(raw)))
    if steady is not None:
        steady[key] = found
    return found


def customer(conn: Connection, customer_id: str) -> Customer | None:
    row = _CUSTOMER_BY_ID.mapping(conn, {"id": customer_id})
    return loaded(Customer, row) if row is not None else None


def grant(conn: Connection, grant_id: str) -> Grant | None:
    row = _GRANT_BY_ID.mapping(conn, {"id": grant_id})
    return loaded(Grant, row) if row is not None else None
