"""``vrm notices``: the operator sees where each notice stands and queues
parked ones again."""

from __future__ import annotations

import json

from fastapi import FastAPI
from sqlmodel import Session, update

from consent.notices.models import PARKED, PENDING, VendorNotice
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import vrm
from tests.notices.conftest import Answer, Receiver
from tests.notices.kit import GRANTS, outbox, run_once


def _parked_notice(app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver) -> int:
    receiver.default = Answer(status=400, body=b'{"err":"invalid_key"}')
    token = tokens_for(ana, vendor, "profile.email:read")
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    run_once(app)
    [notice] = outbox(app)
    assert notice.state == PARKED
    return notice.seq


def test_list_shows_each_notice_and_names_no_customer(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    seq = _parked_notice(app, ana, vendor, receiver)
    ran = vrm(app.state.settings, "notices", "list", "--json")
    assert ran.returncode == 0, ran.stderr
    [row] = json.loads(ran.stdout)
    assert row["seq"] == seq
    assert row["vendor"] == vendor.client_id
    assert (row["state"], row["attempts"]) == ("parked", 1)
    assert row["last_outcome"] == "refused: invalid_key"
    assert ana.id not in ran.stdout
    assert ana.email not in ran.stdout
    table = vrm(app.state.settings, "notices", "list", "--state", "parked")
    assert table.returncode == 0
    assert "parked" in table.stdout
    assert ana.id not in table.stdout
    none = vrm(app.state.settings, "notices", "list", "--state", "pending")
    assert none.stdout.strip() == "no notices"


def test_retry_queues_a_parked_notice_again(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    seq = _parked_notice(app, ana, vendor, receiver)
    ran = vrm(app.state.settings, "notices", "retry", str(seq))
    assert ran.returncode == 0, ran.stderr
    assert "1 notice queued again" in ran.stdout
    [notice] = outbox(app)
    assert notice.state == PENDING
    receiver.default = Answer(status=202)
    run_once(app)
    assert outbox(app)[0].state == "delivered"


def test_bad_input_gets_one_line_and_a_non_zero_exit(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    for args, message in (
        (("list", "--state", "lost"), "--state must be one of pending, delivered, parked"),
        (("retry",), "name one parked notice, or --vendor CLIENT_ID, or --all"),
        (("retry", "5", "--all"), "name one parked notice"),
        (("retry", "987654"), "no parked notice 987654"),
    ):
        ran = vrm(app.state.settings, "notices", *args)
        assert ran.returncode == 1, args
        assert ran.stderr.count("\n") == 1, ran.stderr
        assert message in ran.stderr
    # A delivered notice is not "retried".
    with Session(app.state.engine) as session:
        session.exec(update(VendorNotice).values(state="delivered"))  # type: ignore[call-overload]
        session.commit()
    assert vrm(app.state.settings, "notices", "retry", "--all").stdout.strip() == (
        "0 notices queued again"
    )
