"""Sign-up, log-in, log-out, password change, sessions and erasure through
the SDK against the served store."""

from __future__ import annotations

import secrets

import httpx
import pytest

from client import VRMClient, VRMError
from tests.client.conftest import LoggedIn
from tests.liveserver import LiveServer

NEW_PASSWORD = "another horse battery staple"


def test_sign_up_then_log_in_gives_the_account(server: LiveServer) -> None:
    email = f"sdk-{secrets.token_hex(4)}@example.org"
    with VRMClient(server.url) as sdk:
        made = sdk.sign_up(email, "correct horse battery staple")
        logged = sdk.log_in(email, "correct horse battery staple")
        account = (made.id, made.email, made.created_at)
        assert (logged.id, logged.email, logged.created_at) == account
        assert logged.recovery_key is None
        me = sdk.me()
        assert (me.id, me.email, me.created_at) == account


def test_a_log_in_that_moves_the_keys_gives_the_recovery_key() -> None:
    # The served store gives one only to a customer made while it held the
    # keys (tests/vrm/test_move_to_customer_keys.py); here, its answer.
    answer = {
        "id": "c1",
        "email": "ana@example.org",
        "created_at": "2026-12-01T10:00:00Z",
        "recovery_key": "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567",
    }

    def serve(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/api/v1/session")
        return httpx.Response(200, json=answer)

    with VRMClient("http://store.test", transport=httpx.MockTransport(serve)) as sdk:
        logged = sdk.log_in("ana@example.org", "correct horse battery staple")
    assert (logged.id, logged.email, logged.recovery_key) == (
        "c1",
        "ana@example.org",
        "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ23-4567",
    )


def test_sign_up_with_a_taken_email_is_a_conflict(logged_in: LoggedIn) -> None:
    with pytest.raises(VRMError) as refused:
        logged_in.sdk.sign_up(logged_in.customer.email, "correct horse battery staple")
    assert refused.value.status == 409
    assert refused.value.type == "urn:vrm:problem:conflict"


def test_wrong_password_is_refused_with_problem_details(server: LiveServer) -> None:
    customer = server.new_customer("sdk")
    with VRMClient(server.url) as sdk, pytest.raises(VRMError) as refused:
        sdk.log_in(customer.email, "not the password at all")
    error = refused.value
    assert (error.status, error.type, error.instance) == (
        401,
        "urn:vrm:problem:unauthenticated",
        "/api/v1/session",
    )
    assert "not the password" not in str(error)


def test_request_after_log_out_is_refused(logged_in: LoggedIn) -> None:
    logged_in.sdk.log_out()
    with pytest.raises(VRMError) as refused:
        logged_in.sdk.profile()
    assert refused.value.status == 401
    assert refused.value.type == "urn:vrm:problem:unauthenticated"


def test_log_out_ends_the_session_on_the_server(server: LiveServer, logged_in: LoggedIn) -> None:
    with VRMClient(server.url) as other:
        other.log_in(logged_in.customer.email, logged_in.customer.password)
        assert len(logged_in.sdk.sessions()) == 2
        other.log_out()
    assert [s.current for s in logged_in.sdk.sessions()] == [True]


def test_sessions_list_this_one_as_current(logged_in: LoggedIn) -> None:
    sessions = logged_in.sdk.sessions()
    assert [s.current for s in sessions] == [True]
    assert sessions[0].device == "Python httpx"


def test_password_change_keeps_this_session_and_moves_the_login(
    server: LiveServer, logged_in: LoggedIn
) -> None:
    logged_in.sdk.change_password(logged_in.customer.password, NEW_PASSWORD)
    assert logged_in.sdk.me().email == logged_in.customer.email
    with VRMClient(server.url) as again:
        with pytest.raises(VRMError) as refused:
            again.log_in(logged_in.customer.email, logged_in.customer.password)
        assert refused.value.status == 401
        assert again.log_in(logged_in.customer.email, NEW_PASSWORD).email == (
            logged_in.customer.email
        )


def test_deleted_account_can_no_longer_log_in(server: LiveServer, logged_in: LoggedIn) -> None:
    logged_in.sdk.delete_account(logged_in.customer.password)
    with pytest.raises(VRMError) as after:
        logged_in.sdk.me()
    assert after.value.status == 401
    with VRMClient(server.url) as again, pytest.raises(VRMError) as refused:
        again.log_in(logged_in.customer.email, logged_in.customer.password)
    assert refused.value.status == 401


def test_deleting_with_a_wrong_password_is_forbidden(logged_in: LoggedIn) -> None:
    with pytest.raises(VRMError) as refused:
        logged_in.sdk.delete_account("not the password at all")
    assert (refused.value.status, refused.value.type) == (403, "urn:vrm:problem:forbidden")
    assert logged_in.sdk.me().email == logged_in.customer.email
