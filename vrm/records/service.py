"""Reading and writing sealed documents (profile, preferences), each field
sealed under its own key (vrm/records/sealing.py)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, bindparam, select, update
from sqlmodel import Session, col

from vrm.catalogue import CATEGORIES, DOCUMENT_CATEGORIES
from vrm.dbtypes import utcnow
from vrm.errors import NotFound, PreconditionFailed, ValidationFailed
from vrm.etags import check_if_match, make_etag
from vrm.feed import changes
from vrm.jsonmerge import merge_patch
from vrm.keys.service import DATA_KEY_VERSION, Vault
from vrm.records import sealing
from vrm.records.models import DocumentRecord
from vrm.storage.statements import ManyKeys, Statement

logger = logging.getLogger(__name__)

# A PATCH without If-Match retries this often when another write lands
# between its read and its write.
_PATCH_ATTEMPTS = 5


@dataclass
class Document:
    """A customer's document as read: ``model`` is it validated by its
    schema, None if the stored JSON no longer validates (a null stored for
    ``1e999`` before issue 12, or a schema that tightened since)."""

    category: str
    model: BaseModel | None
    plaintext: bytes
    etag: str
    revision: int
    updated_at: datetime

    @property
    def data(self) -> BaseModel:
        """The validated document, for callers that need the model; raises
        pydantic's ValidationError if it no longer validates (its owner
        reads it through :attr:`public`)."""
        if self.model is None:
            return _schema(self.category).model_validate_json(self.plaintext)
        return self.model

    @cached_property
    def stored(self) -> dict[str, Any]:
        """The JSON as stored: what a merge patch applies to."""
        data: dict[str, Any] = json.loads(self.plaintext)
        return data

    @property
    def public(self) -> dict[str, Any]:
        """What its owner reads and exports: the schema's JSON, or, if the
        document no longer validates, the stored JSON as it is, so that its
        owner can still see, repair or replace it (never a 500)."""
        if self.model is None:
            return self.stored
        return self.model.model_dump(mode="json")


def _encode(model: BaseModel) -> bytes:
    return model.model_dump_json(exclude_none=True).encode()


def _schema(category: str) -> type[BaseModel]:
    if category not in DOCUMENT_CATEGORIES:
        raise NotFound(f"No document category {category!r}.")
    return CATEGORIES[category].schema


def seal_document(
    session: Session, vault: Vault, customer_id: str, category: str, plaintext: bytes
) -> tuple[int, bytes]:
    """A document's stored JSON sealed field by field: (key version,
    ciphertext), as ``document_record`` keeps them."""
    data = _stored_json(plaintext)
    return DATA_KEY_VERSION, sealing.seal_fields(session, vault, customer_id, category, data)


def create_empty_documents(*, session: Session, vault: Vault, customer_id: str) -> None:
    now = utcnow()
    for category in DOCUMENT_CATEGORIES:
        key_version, ciphertext = seal_document(
            session, vault, customer_id, category, _encode(_schema(category)())
        )
        session.add(
            DocumentRecord(
                customer_id=customer_id,
                category=category,
                key_version=key_version,
                ciphertext=ciphertext,
                revision=1,
                updated_at=now,
            )
        )


def _row(session: Session, customer_id: str, category: str) -> DocumentRecord:
    row = session.get(DocumentRecord, (customer_id, category))
    if row is None:
        raise NotFound(f"No {category} document.")
    return row


def _plaintext(
    session: Session, vault: Vault, customer_id: str, category: str
) -> tuple[DocumentRecord, bytes]:
    row = _row(session, customer_id, category)
    conn = session.connection()
    return row, _open(conn, vault, customer_id, category, row.key_version, row.ciphertext)


def _open(
    conn: Connection,
    vault: Vault,
    customer_id: str,
    category: str,
    key_version: int,
    ciphertext: bytes,
    fields: Collection[str] | None = None,
) -> bytes:
    """The document's stored JSON: of ``fields`` only if named, opening
    only their keys (a document sealed whole, from before per-field keys,
    opens whole, with the category's key)."""
    if sealing.by_field(ciphertext):
        return sealing.open_fields(
            conn, vault, customer_id, category, key_version, ciphertext, fields
        )
    return sealing.open_whole(conn, vault, customer_id, category, key_version, ciphertext)


def _fields_json(
    conn: Connection,
    vault: Vault,
    customer_id: str,
    category: str,
    key_version: int,
    ciphertext: bytes,
    fields: Collection[str] | None,
) -> dict[str, Any]:
    data = _stored_json(_open(conn, vault, customer_id, category, key_version, ciphertext, fields))
    if fields is not None and not sealing.by_field(ciphertext):
        data = {f: data[f] for f in fields if f in data}
    return data


def _load(session: Session, vault: Vault, customer_id: str, category: str) -> Document:
    schema = _schema(category)
    row, plaintext = _plaintext(session, vault, customer_id, category)
    try:
        model: BaseModel | None = schema.model_validate_json(plaintext)
    except ValidationError:
        logger.warning("the stored %s of customer %s no longer validates", category, customer_id)
        model = None
    return Document(
        category=category,
        model=model,
        plaintext=plaintext,
        etag=make_etag(row.revision, row.ciphertext),
        revision=row.revision,
        updated_at=row.updated_at,
    )


def read_document(*, session: Session, vault: Vault, customer_id: str, category: str) -> Document:
    return _load(session, vault, customer_id, category)


def read_fields(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    category: str,
    fields: Collection[str] | None = None,
) -> dict[str, Any]:
    """The document as stored JSON, without building the model: what the
    vendor API projects from, of ``fields`` only if named (only their keys
    are used: a grant of some fields opens those, vrm/records/sealing.py).
    It was validated when written, and AES-GCM proves it is what was
    written; reading it back through pydantic again cost more than the
    decryption (docs/performance.md#the-routed-paths)."""
    _schema(category)
    row = _row(session, customer_id, category)
    return _fields_json(
        session.connection(), vault, customer_id, category, row.key_version, row.ciphertext, fields
    )


# A run of digits as long as an integer beyond 64 bits (or anywhere else).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _stored_json(plaintext: bytes) -> dict[str, Any]:
    """A document's stored JSON, parsed as the standard library parses it,
    at a fifth of the cost where orjson gives the same values (a feed page
    opens two thousand documents). It does not for an integer beyond 64
    bits, which it reads as a float, nor for what it refuses (a lone
    surrogate, NaN): the standard library reads those."""
    if _LONG_DIGITS.search(plaintext) is None:
        try:
            data: dict[str, Any] = orjson.loads(plaintext)
        except orjson.JSONDecodeError:
            pass
        else:
            return data
    data = json.loads(plaintext)
    return data


# The customer's sealed documents, all in one query on the driver's cursor.
_DOCUMENTS = Statement(
    select(
        col(DocumentRecord.category),
        col(DocumentRecord.key_version),
        col(DocumentRecord.ciphertext),
    ).where(col(DocumentRecord.customer_id) == bindparam("c"))
)
# Several customers' sealed documents.
_DOCUMENTS_OF = ManyKeys(
    select(
        col(DocumentRecord.customer_id),
        col(DocumentRecord.category),
        col(DocumentRecord.key_version),
        col(DocumentRecord.ciphertext),
    ),
    col(DocumentRecord.customer_id),
)

# A customer's sealed documents: (category, key version, ciphertext) each.
SealedDocuments = list[tuple[str, int, bytes]]


def sealed_documents_of(
    conn: Connection, customer_ids: Iterable[str]
) -> dict[str, SealedDocuments]:
    """The sealed documents of each of these customers, for
    :func:`read_fields_of`, in one query (vrm/storage/statements.py,
    ManyKeys)."""
    found: dict[str, SealedDocuments] = {c: [] for c in customer_ids}
    for customer_id, category, key_version, ciphertext in _DOCUMENTS_OF.rows(conn, found):
        found[customer_id].append((category, key_version, ciphertext))
    return found


def read_fields_of(
    *,
    conn: Connection,
    vault: Vault,
    customer_id: str,
    categories: list[str],
    fields: Mapping[str, Collection[str]] | None = None,
    sealed: SealedDocuments | None = None,
) -> dict[str, dict[str, Any]]:
    """Several documents as :func:`read_fields` gives them, by category
    (of ``fields[category]`` only, if given), in one query on a plain
    connection (the vendor read path), or from the customer's ``sealed``
    documents if the caller read them already (see
    :func:`sealed_documents_of`)."""
    if sealed is None:
        sealed = _DOCUMENTS.rows(conn, {"c": customer_id})
    found: dict[str, dict[str, Any]] = {}
    for category, key_version, ciphertext in sealed:
        if category in categories:
            found[category] = _fields_json(
                conn,
                vault,
                customer_id,
                category,
                key_version,
                ciphertext,
                None if fields is None else fields[category],
            )
    for category in categories:
        if category not in found:
            raise NotFound(f"No {category} document.")
    return found


def _write(
    session: Session, vault: Vault, customer_id: str, current: Document, new: BaseModel
) -> Document | None:
    """Write new over current if nobody else wrote in between; None if they did."""
    plaintext = _encode(new)
    key_version, ciphertext = seal_document(
        session, vault, customer_id, current.category, plaintext
    )
    now = utcnow()
    result = session.exec(
        update(DocumentRecord)
        .where(
            col(DocumentRecord.customer_id) == customer_id,
            col(DocumentRecord.category) == current.category,
            col(DocumentRecord.revision) == current.revision,
        )
        .values(
            ciphertext=ciphertext,
            key_version=key_version,
            revision=current.revision + 1,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        session.rollback()
        return None
    changes.touch_document(session, customer_id=customer_id, category=current.category)
    session.commit()
    return Document(
        category=current.category,
        model=new,
        plaintext=plaintext,
        etag=make_etag(current.revision + 1, ciphertext),
        revision=current.revision + 1,
        updated_at=now,
    )


def replace_document(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    category: str,
    data: BaseModel,
    if_match: str | None,
) -> Document:
    for _ in range(_PATCH_ATTEMPTS):
        current = _load(session, vault, customer_id, category)
        check_if_match(if_match, current.etag)
        written = _write(session, vault, customer_id, current, data)
        if written is not None:
            return written
    raise PreconditionFailed("The document is being changed by another request; try again.")


def patch_document(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    category: str,
    patch: dict[str, Any],
    if_match: str | None,
) -> Document:
    """Apply a JSON merge patch (RFC 7396) and validate the result whole."""
    schema = _schema(category)
    for _ in range(_PATCH_ATTEMPTS):
        current = _load(session, vault, customer_id, category)
        check_if_match(if_match, current.etag)
        # From the stored JSON, not the model: a document that no longer
        # validates can be repaired by a patch that removes what is wrong.
        merged = merge_patch(current.stored, patch)
        try:
            new = schema.model_validate(merged)
        except ValidationError as exc:
            raise ValidationFailed(
                "The patched document is invalid.", errors=_errors(exc)
            ) from None
        written = _write(session, vault, customer_id, current, new)
        if written is not None:
            return written
    raise PreconditionFailed("The document is being changed by another request; try again.")


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    # Location and message only: never echo the submitted values.
    return [
        {
            "field": ".".join(str(p) for p in e["loc"]) or "body",
            "message": e["msg"],
            "code": e["type"],
        }
        for e in exc.errors()
    ]


def seal_by_field(*, session: Session, vault: Vault, customer_id: str) -> list[str]:
    """Seal again, as documents are sealed today, the customer's documents
    sealed whole before per-field keys, or by field before the whole copy
    (vrm/records/sealing.py), as they are (same content, a new revision;
    not a change on the feed); the caller commits, while the customer's
    keys open (at their log-in). Returns the
    categories sealed again: their live grants must escrow the field keys
    now (vrm/hooks.py). A document whose stored JSON holds what is not a
    field of the catalogue stays whole, and is sealed by field at its next
    write, which validates it."""
    rows = session.scalars(
        select(DocumentRecord).where(col(DocumentRecord.customer_id) == customer_id)
    ).all()
    done: list[str] = []
    for row in rows:
        if row.category not in DOCUMENT_CATEGORIES or sealing.is_current(row.ciphertext):
            continue
        plaintext = _open(
            session.connection(), vault, customer_id, row.category, row.key_version, row.ciphertext
        )
        stored = _stored_json(plaintext)
        if not set(stored) <= set(CATEGORIES[row.category].fields):
            logger.warning("a stored %s holds what is not its fields: left whole", row.category)
            continue
        try:
            key_version, ciphertext = seal_document(
                session, vault, customer_id, row.category, plaintext
            )
        except ValueError:
            # A value JSON cannot write (NaN from before issue 12).
            logger.warning("a stored %s holds what JSON cannot write: left whole", row.category)
            continue
        # Unless a write sealed it by field meanwhile.
        result = session.exec(
            update(DocumentRecord)
            .where(
                col(DocumentRecord.customer_id) == customer_id,
                col(DocumentRecord.category) == row.category,
                col(DocumentRecord.revision) == row.revision,
            )
            .values(ciphertext=ciphertext, key_version=key_version, revision=row.revision + 1)
        )
        if result.rowcount == 1:
            done.append(row.category)
    return done
