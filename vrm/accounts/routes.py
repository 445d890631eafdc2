from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from vrm.accounts import service, sessions
from vrm.accounts.models import (
    AccountCreated,
    AccountPublic,
    Credentials,
    LoggedIn,
    PasswordChange,
    PasswordConfirmation,
    Recovered,
    Recovery,
    SessionList,
    SignUp,
)
from vrm.db import SessionDep
from vrm.deps import (
    ClientAddressDep,
    CurrentCustomer,
    DeviceDep,
    PasswordsDep,
    SessionTokenDep,
    SettingsDep,
    VaultDep,
    secure_cookies,
)
from vrm.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    problems,
)
from vrm.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["account"])


async def erasure_hooks(request: Request) -> Sequence[service.OnErase]:
    """What the layers above the store do on erasure, as create_app set it."""
    hooks: Sequence[service.OnErase] = request.app.state.on_erase
    return hooks


OnEraseDep = Annotated[Sequence[service.OnErase], Depends(erasure_hooks)]


async def keys_moved_hook(request: Request) -> service.OnKeysMoved:
    """What the layers above the store do when a customer's root key moves
    to them at log-in, as create_app set it."""
    hook: service.OnKeysMoved = request.app.state.on_keys_moved
    return hook


OnKeysMovedDep = Annotated[service.OnKeysMoved, Depends(keys_moved_hook)]


def set_session_cookie(
    response: Response, request: Request, settings: Settings, token: str
) -> None:
    response.set_cookie(
        settings.session_cookie_name,
        token,
        max_age=settings.session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )


@router.post("/accounts", status_code=status.HTTP_201_CREATED, responses=problems(Conflict))
def sign_up(
    body: SignUp,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
) -> AccountCreated:
    """Create an account. Log in afterwards with POST /api/v1/session.
    Keep the ``recovery_key``: it is shown only here."""
    made = service.sign_up(
        session=session,
        vault=vault,
        passwords=passwords,
        settings=settings,
        email=str(body.email),
        password=body.password,
    )
    return AccountCreated(
        id=made.customer.id,
        email=str(body.email),
        created_at=made.customer.created_at,
        recovery_key=made.recovery_key,
    )


@router.post("/recovery", responses=problems(Unauthenticated, TooManyRequests))
def recover(
    body: Recovery,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    address: ClientAddressDep,
) -> Recovered:
    """A forgotten password: the recovery key sets a new one. Every session
    ends; log in afterwards. Answers with a new recovery key, shown once."""
    return Recovered(
        recovery_key=service.recover(
            session=session,
            vault=vault,
            passwords=passwords,
            settings=settings,
            email=str(body.email),
            recovery_key=body.recovery_key,
            new_password=body.new_password,
            client_address=address,
        )
    )


@router.post("/session", responses=problems(Unauthenticated, TooManyRequests))
def log_in(
    body: Credentials,
    request: Request,
    response: Response,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    address: ClientAddressDep,
    device: DeviceDep,
    on_keys_moved: OnKeysMovedDep,
) -> LoggedIn:
    """Log in; sets an HttpOnly, SameSite=Lax session cookie. Keep the
    ``recovery_key`` if there is one: it is shown only here."""
    logged = service.log_in(
        session=session,
        vault=vault,
        passwords=passwords,
        settings=settings,
        email=str(body.email),
        password=body.password,
        client_address=address,
        device=device,
        on_keys_moved=on_keys_moved,
    )
    set_session_cookie(response, request, settings, logged.token)
    customer = logged.customer
    return LoggedIn(
        id=customer.id,
        email=service.account_email(session=session, vault=vault, customer=customer),
        created_at=customer.created_at,
        recovery_key=logged.recovery_key,
    )


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
def log_out(
    response: Response,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    token: SessionTokenDep,
) -> None:
    """End this session. Succeeds even if it had already ended."""
    if token:
        sessions.log_out(session=session, vault=vault, token=token)
    response.delete_cookie(settings.session_cookie_name, path="/")


@router.get("/me")
def me(customer: CurrentCustomer, session: SessionDep, vault: VaultDep) -> AccountPublic:
    return AccountPublic(
        id=customer.id,
        email=service.account_email(session=session, vault=vault, customer=customer),
        created_at=customer.created_at,
    )


@router.put(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(Forbidden, TooManyRequests),
)
def change_password(
    body: PasswordChange,
    request: Request,
    response: Response,
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    device: DeviceDep,
) -> None:
    """Change the password. Every other session ends; this one is renewed."""
    token = service.change_password(
        session=session,
        vault=vault,
        passwords=passwords,
        settings=settings,
        customer=customer,
        current_password=body.current_password,
        new_password=body.new_password,
        device=device,
    )
    set_session_cookie(response, request, settings, token)


@router.get("/me/sessions")
def list_sessions(
    customer: CurrentCustomer, session: SessionDep, vault: VaultDep, token: SessionTokenDep
) -> SessionList:
    """Your live sessions, most recently used first; ``current`` marks this
    one. ``last_used_at`` is accurate to within five minutes."""
    return SessionList(
        items=sessions.sessions_of(
            session=session, vault=vault, customer_id=customer.id, current_token=token
        )
    )


@router.delete(
    "/me/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(NotFound),
)
def end_session(
    session_id: str,
    response: Response,
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    token: SessionTokenDep,
) -> None:
    """End one of your sessions at once; ending this one logs you out."""
    if sessions.end_session(
        session=session,
        vault=vault,
        customer_id=customer.id,
        session_id=session_id,
        current_token=token,
    ):
        response.delete_cookie(settings.session_cookie_name, path="/")


@router.delete(
    "/me", status_code=status.HTTP_204_NO_CONTENT, responses=problems(Forbidden, TooManyRequests)
)
def delete_account(
    body: PasswordConfirmation,
    response: Response,
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    passwords: PasswordsDep,
    settings: SettingsDep,
    on_erase: OnEraseDep,
) -> None:
    """Erase the account and all its data for good (crypto-shredding)."""
    service.delete_account(
        session=session,
        vault=vault,
        passwords=passwords,
        settings=settings,
        customer=customer,
        password=body.password,
        on_erase=on_erase,
    )
    response.delete_cookie(settings.session_cookie_name, path="/")
