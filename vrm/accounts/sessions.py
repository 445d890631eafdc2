"""Login sessions: opened by a password check, found by the keyed hash of
their token, listed and ended by the customer.

A session has two names. The token (in the cookie) is stored only as its
keyed hash, the primary key every request looks up. The ``id`` is random
and unrelated to the token: it is what the customer sees and ends a
session by, so listing sessions gives away nothing that would open one.

``last_used_at`` is written when a request finds it more than
:data:`LAST_USED_EVERY` old, not on every request: the read path stays a
read almost always, and the timeline of a customer's activity that a copy
of the database shows is no finer than that.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from vrm.accounts import devices
from vrm.accounts.models import Customer, LoginSession, SessionPublic
from vrm.catalogue import ACCOUNT
from vrm.crypto import aead
from vrm.dbtypes import utcnow
from vrm.errors import NotFound, VRMError
from vrm.history import pending
from vrm.keys import custody
from vrm.keys.service import UNLOCK_SECONDS, Vault
from vrm.settings import Settings

logger = logging.getLogger(__name__)

LAST_USED_EVERY = timedelta(minutes=5)
# What a session's seal of a customer-held root key is bound to (custody).
_KIND = "session"

# What open_session makes (uuid4().hex); anything else names no session and
# is answered without a query, with the same 404 as an unknown id.
_ID = re.compile(r"[0-9a-f]{32}")


def _device_record(session_id: str) -> str:
    # The sealed device is bound to its session (AES-GCM associated data),
    # apart from the account's email, which is sealed under the customer id.
    return f"login-session/{session_id}"


def open_session(
    *,
    session: Session,
    vault: Vault,
    settings: Settings,
    customer_id: str,
    device: str,
    root: bytes | None = None,
) -> str:
    """Add a session for ``customer_id`` (the caller commits); returns its
    token. ``device`` comes from :func:`vrm.accounts.devices.describe`.
    A customer-held ``root`` key is sealed for the session under a key
    only its token gives (vrm/keys/custody.py)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session_id = uuid.uuid4().hex
    # Padded to one length: the ciphertext's size must not tell the device.
    plaintext = device.encode()[: devices.LONGEST].ljust(devices.LONGEST, b"\0")
    sealed = vault.seal(
        session,
        customer_id=customer_id,
        category=ACCOUNT,
        record_id=_device_record(session_id),
        plaintext=plaintext,
    )
    session.add(
        LoginSession(
            token_hash=vault.token_hash(token),
            id=session_id,
            customer_id=customer_id,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.session_ttl_seconds),
            last_used_at=now,
            key_version=sealed.key_version,
            device_ct=sealed.ciphertext,
            root_sealed=None
            if root is None
            else custody.seal_for_credential(token, customer_id, session_id, root, kind=_KIND),
        )
    )
    return token


def login_session(*, session: Session, vault: Vault, token: str) -> LoginSession | None:
    """The unexpired session of ``token``. Its ``created_at`` is when the
    customer last gave their password (OIDC ``auth_time``): a session is
    only ever opened by a password check.

    When ``last_used_at`` is due, it is updated and committed here, before
    the request's own work, which has not begun: this runs first, as the
    request's authentication."""
    row = session.get(LoginSession, vault.token_hash(token))
    now = utcnow()
    if row is None or row.expires_at <= now:
        return None
    # The root key to fold waiting deposits with: only when the session
    # presents it anew, not within UNLOCK_SECONDS of its last request.
    fold_with = None
    if row.root_sealed is not None:
        held = vault.holds_root(row.customer_id)
        root = _unlock(vault, row, token, now)
        if root is None:
            return None
        fold_with = None if held else root
    if now - row.last_used_at >= LAST_USED_EVERY:
        # Detached first, so the commit does not expire what the caller
        # reads next (nor fail it, if the session ends meanwhile).
        session.expunge(row)
        session.exec(
            update(LoginSession)
            .where(col(LoginSession.token_hash) == row.token_hash)
            .values(last_used_at=now)
        )
        session.commit()
        row.last_used_at = now
    if fold_with is not None:
        if row in session:
            session.expunge(row)
        _fold_deposits(session, vault, row.customer_id, fold_with)
    return row


def _unlock(vault: Vault, row: LoginSession, token: str, now: datetime) -> bytes | None:
    """Hand the vault the customer-held root key the session holds, for
    this request and never past the session's end, and return it; None if
    the seal does not open (an altered row: no session)."""
    try:
        root = _root(row, token)
    except aead.SealError:
        return None
    left = (row.expires_at - now).total_seconds()
    vault.unlock(row.customer_id, root, seconds=min(UNLOCK_SECONDS, left))
    return root


def _fold_deposits(session: Session, vault: Vault, customer_id: str, root: bytes) -> None:
    """What vendors deposited while this process did not hold the
    customer's root key (vrm/history/pending.py), folded into their history
    now that their session presents it again: a customer logged in but
    idle sees it at their next request, not only at their next log-in. At
    most once per UNLOCK_SECONDS per customer and process, one query when
    nothing waits; before the request's own work, as the last-used update
    above. Never fails the request: what does not fold waits for the next."""
    if not pending.waiting(session, customer_id):
        return
    customer = session.get(Customer, customer_id)
    if customer is None:
        return
    try:
        pending.fold(session=session, vault=vault, customer=customer, root=root)
    except VRMError as exc:
        session.rollback()
        logger.warning("pending deposits stay pending (%s)", exc.__class__.__name__)


def _root(row: LoginSession, token: str) -> bytes:
    return custody.open_for_credential(
        token, row.customer_id, row.id, row.root_sealed or b"", kind=_KIND
    )


def root_of(*, session: Session, vault: Vault, token: str) -> bytes | None:
    """The customer-held root key the live session of ``token`` holds, for
    handing on to another credential of the customer's (the command line's
    device login, consent/oauth/first_party.py); None for a server-held
    customer, or when ``token`` names no live session whose seal opens."""
    row = session.get(LoginSession, vault.token_hash(token))
    if row is None or row.expires_at <= utcnow() or row.root_sealed is None:
        return None
    try:
        return _root(row, token)
    except aead.SealError:
        return None


def customer_for_token(*, session: Session, vault: Vault, token: str) -> Customer | None:
    row = login_session(session=session, vault=vault, token=token)
    return None if row is None else session.get(Customer, row.customer_id)


def log_out(*, session: Session, vault: Vault, token: str) -> None:
    """End the session of ``token``, and forget the customer's root key in
    this process (vrm/keys/service.py, :meth:`~vrm.keys.service.Vault.lock`)."""
    ended = session.exec(
        delete(LoginSession)
        .where(col(LoginSession.token_hash) == vault.token_hash(token))
        .returning(col(LoginSession.customer_id))
    ).first()
    session.commit()
    if ended is not None:
        vault.lock(ended[0])


def forget_expired(*, session: Session, customer_id: str) -> None:
    """Delete the customer's expired sessions (the caller commits)."""
    session.exec(
        delete(LoginSession).where(
            col(LoginSession.customer_id) == customer_id,
            col(LoginSession.expires_at) <= utcnow(),
        )
    )


def end_all(*, session: Session, customer_id: str) -> None:
    """End every session of the customer (the caller commits)."""
    session.exec(delete(LoginSession).where(col(LoginSession.customer_id) == customer_id))


def _is_current(vault: Vault, row: LoginSession, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(row.token_hash, vault.token_hash(token))


def sessions_of(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    current_token: str | None = None,
    include_expired: bool = False,
) -> list[SessionPublic]:
    """The customer's live sessions, most recently used first. ``current``
    marks the one of ``current_token`` (none when it is None). The export
    asks for the expired ones too: they are held until a log-in or the
    purge removes them."""
    live = [] if include_expired else [col(LoginSession.expires_at) > utcnow()]
    rows = session.exec(
        select(LoginSession)
        .where(col(LoginSession.customer_id) == customer_id, *live)
        .order_by(
            col(LoginSession.last_used_at).desc(),
            col(LoginSession.created_at).desc(),
            col(LoginSession.id),
        )
    ).all()
    return [
        SessionPublic(
            id=row.id,
            device=_device(session, vault, row),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            current=_is_current(vault, row, current_token),
        )
        for row in rows
    ]


def _device(session: Session, vault: Vault, row: LoginSession) -> str:
    if row.device_ct is None:
        return devices.UNKNOWN
    plaintext = vault.open(
        session.connection(),
        customer_id=row.customer_id,
        category=ACCOUNT,
        record_id=_device_record(row.id),
        key_version=row.key_version,
        ciphertext=row.device_ct,
    )
    return plaintext.rstrip(b"\0").decode()


def end_session(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    session_id: str,
    current_token: str | None,
) -> bool:
    """End one live session of the customer at once; returns whether it was
    the one of ``current_token``. Another customer's session, an expired
    one and an unknown id are all the same :class:`NotFound`."""
    row = (
        session.exec(
            select(LoginSession).where(
                col(LoginSession.id) == session_id,
                col(LoginSession.customer_id) == customer_id,
                col(LoginSession.expires_at) > utcnow(),
            )
        ).first()
        if _ID.fullmatch(session_id)
        else None
    )
    if row is None:
        raise NotFound("No such session.")
    current = _is_current(vault, row, current_token)
    session.delete(row)
    session.commit()
    if current:
        vault.lock(customer_id)
    return current
