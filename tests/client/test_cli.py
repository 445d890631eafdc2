"""The real ``vrm-me`` console script against a served store (the SDK tests'
one, tests/client/conftest.py), device login included: the test plays the
customer's browser on the device page while ``vrm-me login`` polls.

Each customer logs in once per module (a login waits at least one polling
interval, 5 s); the config directory of each is its own
(``VRM_ME_CONFIG_DIR``)."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.consent.conftest import read_form
from tests.liveserver import (
    PASSWORD,
    Browser,
    Customer,
    LiveServer,
    free_port,
    grant_on_consent_page,
    live_server,
)

USER_CODE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")
TIMEOUT = 60


def vrm_me_command() -> str:
    """The ``vrm-me`` script of the virtualenv running the tests."""
    script = Path(sys.executable).parent / "vrm-me"
    if not script.exists():
        raise RuntimeError(f"{script} is missing: install the project (pip install -e .)")
    return str(script)


def _env(config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VRM_", "COLUMNS"))}
    env["VRM_ME_CONFIG_DIR"] = str(config)
    env["COLUMNS"] = "200"  # Rich tables unwrapped
    return env


def vrm_me(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [vrm_me_command(), *args],
        env=_env(config),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def approve_in_browser(
    server: LiveServer, customer: Customer, user_code: str, decision: str = "approve"
) -> None:
    """What the customer does in their browser: open the device page, log
    in (sent there first), check the code and approve (or deny)."""
    browser = Browser(server, customer)
    try:
        r = browser.go("GET", f"{server.url}/device?user_code={user_code}")
        assert r.url.path == "/login", r.text
        form = read_form(r.text)
        body = {**form.hidden, "email": customer.email, "password": customer.password}
        r = browser.go("POST", urljoin(str(r.url), form.action), body)
        assert r.url.path == "/device", r.text
        assert user_code in r.text
        form = read_form(r.text)
        r = browser.go(
            "POST", urljoin(str(r.url), form.action), {**form.hidden, "decision": decision}
        )
        assert ("Your device is connected" if decision == "approve" else "was refused") in r.text
    finally:
        browser.close()


def log_in(
    server: LiveServer, customer: Customer, config: Path, decision: str = "approve"
) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen(
        [vrm_me_command(), "login", "--server", server.url],
        env=_env(config),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        shown = []
        for line in process.stderr:
            shown.append(line)
            if found := USER_CODE.search(line):
                approve_in_browser(server, customer, found.group(1), decision)
                break
        else:
            raise AssertionError("vrm-me login showed no user code: " + "".join(shown))
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(
        process.args, process.returncode, stdout, "".join(shown) + stderr
    )


@dataclass(frozen=True)
class LoggedIn:
    customer: Customer
    config: Path
    login: subprocess.CompletedProcess[str]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return vrm_me(self.config, *args, stdin=stdin)

    def json(self, *args: str) -> Any:
        ran = self.run(*args, "--json")
        assert ran.returncode == 0, ran.stderr
        return json.loads(ran.stdout)

    def saved(self) -> dict[str, Any]:
        return dict(json.loads((self.config / "credentials.json").read_text()))


def _logged_in(server: LiveServer, tmp: Path, label: str) -> LoggedIn:
    customer = server.new_customer(label)
    config = tmp / label
    ran = log_in(server, customer, config)
    assert ran.returncode == 0, ran.stderr
    return LoggedIn(customer, config, ran)


@pytest.fixture(scope="module")
def me(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> LoggedIn:
    return _logged_in(server, tmp_path_factory.mktemp("cli"), "cli")


def one_line_error(ran: subprocess.CompletedProcess[str]) -> str:
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("vrm-me: ")
    assert "Traceback" not in ran.stderr
    return lines[0]


# -- login and the saved credentials ------------------------------------------------


def test_login_says_who_is_logged_in_and_never_shows_a_token(me: LoggedIn) -> None:
    assert me.login.stdout.strip().endswith(f"as {me.customer.email}.")
    saved = me.saved()
    for secret in (saved["tokens"]["access_token"], saved["tokens"]["refresh_token"]):
        assert secret not in me.login.stdout + me.login.stderr


def test_credentials_are_readable_by_the_user_alone(me: LoggedIn, server: LiveServer) -> None:
    path = me.config / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(me.config.stat().st_mode) == 0o700
    saved = me.saved()
    assert saved["server"] == server.url
    assert saved["tokens"]["access_token"].startswith("vat_")
    assert saved["tokens"]["refresh_token"].startswith("vrt_")


def test_an_expired_access_token_is_renewed_and_saved_again(me: LoggedIn) -> None:
    saved = me.saved()
    saved["tokens"]["expires_at"] = 0
    (me.config / "credentials.json").write_text(json.dumps(saved))
    assert me.json("profile", "show") is not None
    renewed = me.saved()
    assert renewed["tokens"]["refresh_token"] != saved["tokens"]["refresh_token"]
    assert renewed["tokens"]["expires_at"] > 0
    assert stat.S_IMODE((me.config / "credentials.json").stat().st_mode) == 0o600


def test_a_command_waits_while_another_holds_the_login(me: LoggedIn) -> None:
    # Two commands refreshing with the same refresh token would end the
    # login (the second use looks like a replay): each holds the login's
    # lock until it is done, so they take turns.
    with (me.config / "credentials.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiting = subprocess.Popen(
            [vrm_me_command(), "profile", "show", "--json"],
            env=_env(me.config),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                waiting.wait(timeout=3)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        stdout, stderr = waiting.communicate(timeout=TIMEOUT)
    assert waiting.returncode == 0, stderr
    assert isinstance(json.loads(stdout), dict)


# -- profile, preferences, history -------------------------------------------------------


def test_profile_set_then_show(me: LoggedIn) -> None:
    ran = me.run("profile", "set", "given_name=Ada", "postal_address.locality=Porto")
    assert ran.returncode == 0, ran.stderr
    assert "Ada" in ran.stdout
    assert me.json("profile", "show") == {
        "given_name": "Ada",
        "postal_address": {"locality": "Porto"},
    }
    # An empty value removes the field.
    assert me.json("profile", "set", "postal_address=") == {"given_name": "Ada"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("profile", "set", "given_name"), "'given_name' is not FIELD=VALUE"),
        (("profile", "set", "shoe_size=42"), "unknown field 'shoe_size'"),
        (("profile", "set", "postal_address.planet=Mars"), "unknown field 'postal_address.planet'"),
        (("history", "label", "whatever", "secret"), "unknown label 'secret'"),
        (("history", "add", "--vendor", "X", "--at", "yesterday"), "is not an ISO 8601 time"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(me: LoggedIn, args: tuple[str, ...], says: str) -> None:
    assert says in one_line_error(me.run(*args))


def test_a_value_the_server_refuses_is_its_problem_in_one_line(me: LoggedIn) -> None:
    line = one_line_error(me.run("profile", "set", "birth_date=not-a-date"))
    assert "422" in line


def test_preferences_take_json_values(me: LoggedIn) -> None:
    shown = me.json("prefs", "set", 'dietary=["vegetarian"]', "communication.frequency=weekly")
    assert shown["dietary"] == ["vegetarian"]
    assert shown["communication"]["frequency"] == "weekly"
    table = me.run("prefs", "show")
    assert table.returncode == 0, table.stderr
    assert "communication.frequency" in table.stdout
    assert "vegetarian" in table.stdout


def test_history_add_label_and_list(me: LoggedIn) -> None:
    added = me.json(
        "history",
        "add",
        "--vendor",
        "Livraria Lello",
        "--at",
        "2026-12-01T15:00:00+00:00",
        "--item",
        "A book for my aunt=19.90",
        "--amount",
        "19.90",
        "--currency",
        "EUR",
    )
    assert added["vendor"] == "Livraria Lello"
    labelled = me.json("history", "label", added["id"], "gift")
    assert labelled["labels"] == ["gift"]
    listed = me.json("history", "list", "--label", "gift")
    assert [e["id"] for e in listed] == [added["id"]]
    assert listed[0]["items"][0]["name"] == "A book for my aunt"
    table = me.run("history", "list")
    assert table.returncode == 0, table.stderr
    assert added["id"] in table.stdout
    assert "Livraria Lello" in table.stdout


# -- grants, access log, export ----------------------------------------------------------


def test_grants_list_show_and_revoke_a_vendors_grant(me: LoggedIn, server: LiveServer) -> None:
    browser = Browser(server, me.customer)
    try:
        token = grant_on_consent_page(server, browser, "profile.given_name:read")
    finally:
        browser.close()
    read = httpx.get(
        f"{server.url}/v1/data/profile",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=10,
    )
    assert read.status_code == 200, read.text
    grants = me.json("grants", "list")
    assert [(g["id"], g["status"]) for g in grants] == [(token["grant_id"], "active")]
    table = me.run("grants", "list")
    assert token["grant_id"] in table.stdout
    shown = me.run("grants", "show", token["grant_id"])
    assert shown.returncode == 0, shown.stderr
    assert "SDK Tests" in shown.stdout
    log = me.json("access-log", "--type", "data.read")
    assert log[0]["entry"]["type"] == "data.read"
    assert "given_name" in json.dumps(log[0]["entry"])
    narrowed = me.run("grants", "narrow", token["grant_id"], "profile.given_name:read")
    assert narrowed.returncode == 0, narrowed.stderr
    assert "now allows: profile.given_name:read" in narrowed.stdout
    assert "422" in one_line_error(me.run("grants", "narrow", token["grant_id"], "history:read"))
    revoked = me.run("grants", "revoke", token["grant_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert me.json("grants", "show", token["grant_id"])["status"] == "revoked"
    again = httpx.get(
        f"{server.url}/v1/data/profile",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=10,
    )
    assert again.status_code == 401
    assert "404" in one_line_error(me.run("grants", "show", "no-such-grant"))


def test_access_log_shows_the_cli_login(me: LoggedIn) -> None:
    entries = me.json("access-log", "--type", "token.issued")
    assert any(e["entry"].get("vendor") == "vrm-me" for e in entries), entries
    table = me.run("access-log", "--limit", "5")
    assert table.returncode == 0, table.stderr
    assert "Access log" in table.stdout


def test_export_to_a_private_file(me: LoggedIn, tmp_path: Path) -> None:
    assert me.run("profile", "set", "given_name=Ada").returncode == 0
    target = tmp_path / "my-data.json"
    ran = me.run("export", "-o", str(target))
    assert ran.returncode == 0, ran.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    document = json.loads(target.read_text())
    assert document["profile"]["given_name"] == "Ada"
    assert not list(tmp_path.glob(".*.tmp"))
    to_stdout = me.run("export")
    assert json.loads(to_stdout.stdout)["profile"]["given_name"] == "Ada"


def test_export_on_a_terminal_shows_progress(me: LoggedIn, tmp_path: Path) -> None:
    target = tmp_path / "export.json"
    main, terminal = pty.openpty()
    try:
        ran = subprocess.run(
            [vrm_me_command(), "export", "-o", str(target)],
            env={**_env(me.config), "TERM": "xterm"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=TIMEOUT,
            check=False,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                piece = os.read(main, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not piece:
                break
            shown += piece
    finally:
        os.close(main)
    assert ran.returncode == 0, shown
    assert b"Exporting your data" in shown
    assert f"Exported to {target}".encode() in shown
    assert "profile" in json.loads(target.read_text())


# -- failures ---------------------------------------------------------------------------


def test_not_logged_in_is_one_line_and_exit_1(tmp_path: Path) -> None:
    line = one_line_error(vrm_me(tmp_path / "nobody", "profile", "show"))
    assert line == "vrm-me: not logged in: run vrm-me login --server URL"


def test_login_without_a_server_says_which_option_to_give(tmp_path: Path) -> None:
    line = one_line_error(vrm_me(tmp_path / "nobody", "login"))
    assert line == "vrm-me: say which store: vrm-me login --server URL"


def test_server_down_is_one_line_and_exit_1(me: LoggedIn, tmp_path: Path) -> None:
    down = tmp_path / "down"
    down.mkdir(mode=0o700)
    saved = me.saved()
    saved["server"] = f"http://127.0.0.1:{free_port()}"
    (down / "credentials.json").write_text(json.dumps(saved))
    line = one_line_error(vrm_me(down, "profile", "show"))
    assert "failed" in line
    assert saved["tokens"]["access_token"] not in line
    line = one_line_error(vrm_me(tmp_path / "new", "login", "--server", saved["server"]))
    assert "failed" in line
    # Logging out still forgets the login here, and says the store was not told.
    line = one_line_error(vrm_me(down, "logout"))
    assert line.startswith("vrm-me: logged out here, but the store could not be told: ")
    assert not (down / "credentials.json").exists()


def test_a_revoked_login_says_to_log_in_again(me: LoggedIn, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.mkdir(mode=0o700)
    saved = me.saved()
    saved["tokens"]["access_token"] = "vat_" + "0" * 75
    saved["tokens"]["refresh_token"] = "vrt_" + "0" * 75
    (stale / "credentials.json").write_text(json.dumps(saved))
    line = one_line_error(vrm_me(stale, "profile", "show"))
    assert line == "vrm-me: your login has ended or was revoked: run vrm-me login"


# -- logout and deleting the account -----------------------------------------------------


@pytest.fixture(scope="module")
def leaving(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> LoggedIn:
    return _logged_in(server, tmp_path_factory.mktemp("cli-leaving"), "leaving")


def test_a_login_denied_in_the_browser_saves_nothing(server: LiveServer, tmp_path: Path) -> None:
    ran = log_in(server, server.new_customer("denies"), tmp_path / "denies", decision="deny")
    assert ran.returncode == 1
    assert ran.stderr.endswith("vrm-me: login denied in the browser: nothing was saved\n")
    assert not (tmp_path / "denies" / "credentials.json").exists()


def test_logging_in_again_ends_the_previous_login(server: LiveServer, tmp_path: Path) -> None:
    first = _logged_in(server, tmp_path, "twice")
    before = first.saved()
    again = log_in(server, first.customer, first.config)
    assert again.returncode == 0, again.stderr
    r = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": before["tokens"]["refresh_token"],
            "client_id": "vrm-me",
        },
        timeout=10,
    )
    assert r.json()["error"] == "invalid_grant"
    assert first.saved()["tokens"]["refresh_token"] != before["tokens"]["refresh_token"]
    assert first.run("profile", "show").returncode == 0


def test_logout_revokes_the_login_and_forgets_it(leaving: LoggedIn, server: LiveServer) -> None:
    saved = leaving.saved()
    ran = leaving.run("logout")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Logged out."
    assert not (leaving.config / "credentials.json").exists()
    r = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": saved["tokens"]["refresh_token"],
            "client_id": "vrm-me",
        },
        timeout=10,
    )
    assert r.json()["error"] == "invalid_grant"
    me = httpx.get(
        f"{server.url}/api/v1/me",
        headers={"Authorization": f"Bearer {saved['tokens']['access_token']}"},
        timeout=10,
    )
    assert me.status_code == 401
    assert "not logged in" in one_line_error(leaving.run("profile", "show"))


def test_delete_account_needs_the_typed_email(me: LoggedIn) -> None:
    ran = me.run("delete-account", stdin="someone@else.example\n")
    assert ran.returncode == 1
    # The warning and the prompt, then the refusal.
    assert f"This erases {me.customer.email}" in ran.stderr
    assert ran.stderr.endswith("vrm-me: not deleted: what you typed is not the account's email\n")
    assert me.run("profile", "show").returncode == 0  # still there


def test_delete_account_for_scripts(server: LiveServer, tmp_path: Path) -> None:
    gone = _logged_in(server, tmp_path, "gone")
    saved = gone.saved()
    wrong = gone.run("delete-account", "--yes", "--password-stdin", stdin="wrong password\n")
    assert "403" in one_line_error(wrong)
    ran = gone.run(
        "delete-account", "--yes", "--password-stdin", stdin=gone.customer.password + "\n"
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "Account deleted."
    assert not (gone.config / "credentials.json").exists()
    r = httpx.get(
        f"{server.url}/api/v1/me",
        headers={"Authorization": f"Bearer {saved['tokens']['access_token']}"},
        timeout=10,
    )
    assert r.status_code == 401


# -- a customer who holds their own root key (VRM_KEY_CUSTODY=customer) ------------


@pytest.fixture(scope="module")
def custody_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("cli-custody") / "var",
        vendor_name="CLI Custody Tests",
        settings={"VRM_DEVICE_POLL_INTERVAL_SECONDS": "1", "VRM_KEY_CUSTODY": "customer"},
    ) as served:
        yield served


def test_a_customer_holding_their_own_key_reads_and_writes_before_and_after_a_renewal(
    custody_server: LiveServer, tmp_path: Path
) -> None:
    # Their tokens carry the root key (consent/oauth/first_party.py): the
    # browser's session, which gave it, has no part after the login.
    me = _logged_in(custody_server, tmp_path, "holds-key")
    assert me.json("profile", "set", "given_name=Ada") == {"given_name": "Ada"}
    saved = me.saved()
    saved["tokens"]["expires_at"] = 0
    (me.config / "credentials.json").write_text(json.dumps(saved))
    assert me.json("profile", "show") == {"given_name": "Ada"}
    assert me.saved()["tokens"]["refresh_token"] != saved["tokens"]["refresh_token"]


def test_recover_sets_a_new_password_ends_the_login_and_prints_the_next_key(
    custody_server: LiveServer, tmp_path: Path
) -> None:
    email = "recovers@example.org"
    r = httpx.post(
        f"{custody_server.url}/api/v1/accounts",
        json={"email": email, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    recovery_key = r.json()["recovery_key"]
    customer = Customer(email, PASSWORD)
    me = LoggedIn(customer, tmp_path, log_in(custody_server, customer, tmp_path))
    assert me.login.returncode == 0, me.login.stderr
    # A wrong key: one line, nothing changed, the login kept.
    wrong = me.run(
        "recover", "--email", email, "--stdin", stdin=f"{'A' * 32}\nnew long passphrase\n"
    )
    assert one_line_error(wrong) == "vrm-me: Email or recovery key is wrong."
    assert (tmp_path / "credentials.json").exists()
    ran = me.run(
        "recover",
        "--email",
        email,
        "--stdin",
        "--json",
        stdin=f"{recovery_key}\nnew long passphrase\n",
    )
    assert ran.returncode == 0, ran.stderr
    new_key = json.loads(ran.stdout)["recovery_key"]
    assert new_key != recovery_key
    # Every login ended: this computer's is forgotten.
    assert not (tmp_path / "credentials.json").exists()
    r = httpx.post(
        f"{custody_server.url}/api/v1/session",
        json={"email": email, "password": "new long passphrase"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
