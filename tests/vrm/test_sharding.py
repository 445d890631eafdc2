"""Every table that holds a customer's data can be distributed by the
customer id (Citus; docs/scaling.md).

A customer's tables are found from the schema, not listed: ``customer``
itself, every table with a ``customer_id`` column, and every table a
foreign key leads from to one of those (``grant_change`` through its
grant). Each must let Citus shard it by the customer, colocated with
``customer``: Citus enforces a primary key or a unique key only when it
includes the distribution column, and a foreign key between two
distributed tables only when it joins them on it
(https://docs.citusdata.com/en/latest/develop/reference_ddl.html,
"Adding/Removing Constraints"). A table holding no customer id must be listed
in :data:`GLOBAL`, with what it would be under Citus.

The rule fails for a new table that breaks it: keyed by its own id
alone, reached only through another customer table, holding no customer
id without being listed as global, or with a unique key that leaves the
customer out (the ``test_a_new_...`` tests check each on a throwaway
schema). Tables that break it today and need more than a migration to
comply are in :data:`KNOWN_EXCEPTIONS`, one entry each with the reason;
docs/scaling.md says what each would take. An entry that no longer
breaks the rule fails too, so the list only shrinks.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlmodel import SQLModel

import vrm.models  # noqa: F401 - registers every table on SQLModel.metadata

DISTRIBUTION_COLUMN = "customer_id"
# The table the others are colocated with, distributed by its own id.
ROOT = "customer"

# Tables that hold no customer's data, and what each would be under Citus.
GLOBAL: dict[str, str] = {
    "vendor": "reference table: OAuth clients, few, read with every grant and token",
    "initial_access_token": "reference table: the operator's tokens for dynamic registration",
    "server_key_check": "reference table: one row per server key, read at start",
    "client_assertion": (
        "a vendor's spent private_key_jwt ids: distributed by vendor_id, or local to "
        "the coordinator; never joined with customers' rows"
    ),
    "login_throttle": (
        "keyed by a blind index of the client address (or of address and email), "
        "counted before anyone is known: distributed by its own key, not colocated"
    ),
    "feed_clock": (
        "the one counter of change-log positions, taken by every write: stays on the "
        "coordinator (docs/scaling.md, the feed)"
    ),
    "audit_head": "the verifiable log's size: one global order, on the coordinator",
    "audit_entry": (
        "a leaf of the one Merkle tree of the whole log, customers pseudonymised: "
        "one global order, on the coordinator"
    ),
    "audit_node": "a subtree hash of the one Merkle tree: on the coordinator",
    "audit_checkpoint": "a signed size and root of the one Merkle tree: on the coordinator",
    "audit_cosignature": "a witness's signature of a checkpoint: on the coordinator",
}

# Customer tables that do not comply today, and why a migration alone
# would not do (docs/scaling.md, "Tables not keyed by the customer yet").
KNOWN_EXCEPTIONS: dict[str, str] = {
    "customer": (
        "email_index is unique across customers: a log-in finds the customer by email "
        "before it knows the id; needs a lookup table distributed by email_index"
    ),
    "login_session": (
        "found by token_hash alone on every request: the session cookie would have to "
        "carry the customer id (vrm/accounts/sessions.py)"
    ),
    "consent_grant": (
        "found by its id alone (tokens, codes, notices and access events carry the grant "
        "id); every holder of a grant id would have to carry the customer id too"
    ),
    "grant_change": "holds no customer id: reached through grant_id, as consent_grant is",
    "authorization_code": (
        "found by the code's hash at the exchange: the code would have to carry the customer id"
    ),
    "oauth_token": (
        "found by its id alone, and a client-credentials token has no customer: the "
        "token would have to carry the customer id, and vendor tokens move to a table "
        "of their own"
    ),
    "device_authorization": (
        "written before any customer is known (customer_id is NULL until approved) and "
        "polled by the device code: belongs by its own key, not with a customer"
    ),
    "key_escrow": (
        "keyed by holder, category and version; the key store is being changed "
        "(vrm/keys): add customer_id to the key there"
    ),
    "history_record": (
        "keyed by seq alone, which SQLite's AUTOINCREMENT needs, and event ids are "
        "unique across customers; every update and delete by seq would take the customer"
    ),
    "data_change": (
        "seq is unique across customers: it is the feed's one global order "
        "(docs/scaling.md, the feed)"
    ),
    "feed_notice": (
        "a vendor's notices, read by vendor and kept after the customer is erased "
        "(customer_id becomes NULL): belongs with the vendor, not the customer"
    ),
    "vendor_notice": "holds no customer id: the outbox of feed_notice, read by vendor",
}


def customer_tables(metadata: MetaData) -> set[str]:
    """The tables that hold a customer's data: ``customer``, those with a
    customer id, and those a foreign key leads from to one of these."""
    found = {
        table.name
        for table in metadata.tables.values()
        if table.name == ROOT or DISTRIBUTION_COLUMN in table.c
    }
    grew = True
    while grew:
        grew = False
        for table in metadata.tables.values():
            if table.name not in found and any(
                fk.column.table.name in found for fk in table.foreign_keys
            ):
                found.add(table.name)
                grew = True
    return found


def _distribution_column(table_name: str) -> str:
    return "id" if table_name == ROOT else DISTRIBUTION_COLUMN


def _unique_keys(table: Table) -> list[tuple[str, list[str]]]:
    keys = [("primary key", [c.name for c in table.primary_key.columns])]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            keys.append((f"unique {constraint.name or ''}".strip(), constraint.columns.keys()))
    for index in table.indexes:
        if index.unique:
            keys.append((f"unique index {index.name}", index.columns.keys()))
    return keys


def breaks(table: Table, customers: set[str]) -> list[str]:
    """Why Citus could not distribute ``table`` by the customer id,
    colocated with ``customer``; empty when it could."""
    column = _distribution_column(table.name)
    if column not in table.c:
        return [f"no {column} column"]
    problems = [
        f"{name} ({', '.join(columns)}) leaves out {column}"
        for name, columns in _unique_keys(table)
        if column not in columns
    ]
    for fk in table.foreign_key_constraints:
        referred = fk.referred_table.name
        if referred not in customers:
            continue  # a reference table: any foreign key to it holds
        pairs = {(element.parent.name, element.column.name) for element in fk.elements}
        if (column, _distribution_column(referred)) not in pairs:
            problems.append(f"foreign key to {referred} does not join on the customer id")
    return problems


def violations(
    metadata: MetaData, global_tables: set[str], exceptions: set[str]
) -> dict[str, list[str]]:
    """Each table of ``metadata`` that breaks the rule, with why."""
    customers = customer_tables(metadata)
    found: dict[str, list[str]] = {}
    for table in metadata.tables.values():
        if table.name in customers:
            problems = [] if table.name in exceptions else breaks(table, customers)
        elif table.name in global_tables:
            problems = []
        else:
            problems = ["holds no customer id and is not listed as global"]
        if problems:
            found[table.name] = problems
    return found


def test_every_customer_table_can_be_distributed_by_the_customer() -> None:
    found = violations(SQLModel.metadata, set(GLOBAL), set(KNOWN_EXCEPTIONS))
    assert found == {}


def test_global_tables_exist_and_hold_no_customer_data() -> None:
    customers = customer_tables(SQLModel.metadata)
    assert set(GLOBAL) <= set(SQLModel.metadata.tables)
    assert set(GLOBAL) & customers == set()


def test_each_known_exception_is_a_customer_table_that_still_breaks_the_rule() -> None:
    """Fixing a table removes its entry: the list names only what is still
    owed."""
    customers = customer_tables(SQLModel.metadata)
    assert set(KNOWN_EXCEPTIONS) <= customers
    still = {
        name: bool(breaks(SQLModel.metadata.tables[name], customers)) for name in KNOWN_EXCEPTIONS
    }
    assert still == dict.fromkeys(KNOWN_EXCEPTIONS, True)


def test_the_tables_that_comply_today() -> None:
    """What docs/scaling.md lists as distributed by the customer id."""
    customers = customer_tables(SQLModel.metadata)
    assert customers - set(KNOWN_EXCEPTIONS) == {
        "access_event",
        "data_key",
        "document_record",
        "pending_deposit",
        "vendor_deposit",
    }


def _throwaway() -> MetaData:
    metadata = MetaData()
    Table("customer", metadata, Column("id", String(32), primary_key=True))
    Table("vendor", metadata, Column("id", String(64), primary_key=True))
    Table(
        "note",
        metadata,
        Column("customer_id", ForeignKey("customer.id"), primary_key=True),
        Column("id", String(32), primary_key=True),
        Column("vendor_id", ForeignKey("vendor.id")),
    )
    return metadata


def test_the_throwaway_schema_complies() -> None:
    assert violations(_throwaway(), {"vendor"}, set()) == {}


def test_a_new_customer_table_keyed_by_its_own_id_fails() -> None:
    metadata = _throwaway()
    Table(
        "receipt",
        metadata,
        Column("id", String(32), primary_key=True),
        Column("customer_id", ForeignKey("customer.id"), nullable=False),
    )
    assert violations(metadata, {"vendor"}, set()) == {
        "receipt": ["primary key (id) leaves out customer_id"]
    }


def test_a_new_table_reached_only_through_a_customer_table_fails() -> None:
    metadata = _throwaway()
    Table(
        "note_tag",
        metadata,
        Column("note_customer_id", String(32), primary_key=True),
        Column("note_id", String(32), primary_key=True),
        Column("tag", String(32), primary_key=True),
        # The note's whole key, under other names: Citus needs the
        # distribution column itself.
        ForeignKeyConstraint(["note_customer_id", "note_id"], ["note.customer_id", "note.id"]),
    )
    assert violations(metadata, {"vendor"}, set()) == {"note_tag": ["no customer_id column"]}


def test_a_new_table_without_a_customer_id_not_listed_as_global_fails() -> None:
    metadata = _throwaway()
    Table("setting", metadata, Column("name", String(64), primary_key=True))
    assert violations(metadata, {"vendor"}, set()) == {
        "setting": ["holds no customer id and is not listed as global"]
    }


def test_a_unique_key_that_leaves_the_customer_out_fails() -> None:
    metadata = _throwaway()
    Table(
        "receipt",
        metadata,
        Column("customer_id", ForeignKey("customer.id"), primary_key=True),
        Column("id", String(32), primary_key=True),
        Column("number", String(32), nullable=False),
        Index("ix_receipt_number", "number", unique=True),
    )
    assert violations(metadata, {"vendor"}, set()) == {
        "receipt": ["unique index ix_receipt_number (number) leaves out customer_id"]
    }


def test_a_foreign_key_between_customer_tables_not_on_the_customer_fails() -> None:
    metadata = _throwaway()
    Table(
        "reply",
        metadata,
        Column("customer_id", ForeignKey("customer.id"), primary_key=True),
        Column("id", String(32), primary_key=True),
        Column("note_id", ForeignKey("note.id"), nullable=False),
    )
    assert violations(metadata, {"vendor"}, set()) == {
        "reply": ["foreign key to note does not join on the customer id"]
    }
