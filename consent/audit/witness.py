"""A witness (C2SP tlog-witness): it cosigns a log's checkpoint only when
the checkpoint extends the last one it cosigned, so the operator cannot
show one history to an auditor and another to a customer.

:class:`Witness` answers ``add-checkpoint`` requests for the logs it knows
(by their verifier keys): it checks the log's signature, that the old size
is the one it holds, and the consistency proof from its checkpoint to the
new one, then records the new checkpoint and returns its timestamped
cosignature (C2SP tlog-cosignature). Its state is a JSON file, replaced
atomically under a lock: the check and the record are one step, as the
spec requires. :func:`app` serves it over HTTP; ``vrm audit witness`` runs
that (vrm/cli_audit.py).

:func:`submit` is the log's side: send the checkpoint with a consistency
proof from the size the witness holds, and check the cosignature it sends
back.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from consent.audit import merkle
from consent.audit.checkpoint import Checkpoint
from consent.audit.cosignature import CosignatureSigner, CosignatureVerifier
from consent.audit.note import NoteError, Signature, Verifier, open_note
from vrm.dbtypes import utcnow

SIZE_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What the witness answers: an HTTP status, its media type and body."""

    status: int
    body: str
    media_type: str = "text/plain; charset=utf-8"


class Witness:
    """The cosigner, for the logs whose verifier keys it was given."""

    def __init__(self, signer: CosignatureSigner, logs: Sequence[str], state: Path) -> None:
        self.signer = signer
        self.logs = {v.name: v for v in (Verifier.parse(key) for key in logs)}
        self.state = state
        self._lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            loaded: dict[str, dict[str, object]] = json.loads(self.state.read_text())
        except FileNotFoundError:
            return {}
        return loaded

    def _save(self, state: dict[str, dict[str, object]]) -> None:
        # Written beside and renamed over: a crash leaves the old state or
        # the new, never half of one.
        temporary = self.state.with_name(self.state.name + ".new")
        with temporary.open("w") as out:
            json.dump(state, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.state)

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        """The size and root of the last checkpoint cosigned for the log."""
        held = self._load().get(origin)
        if held is None:
            return None
        return int(str(held["size"])), base64.b64decode(str(held["root"]))

    def add_checkpoint(self, body: bytes) -> Answer:
        """POST add-checkpoint (tlog-witness), every check of the spec in its
        order; nothing is recorded unless all pass."""
        try:
            old, proof, note = _parse_request(body)
        except ValueError as exc:
            return Answer(400, f"{exc}\n")
        origin = note.split("\n", 1)[0]
        log_key = self.logs.get(origin)
        if log_key is None:
            return Answer(404, "unknown log\n")
        try:
            opened = open_note(note, [log_key])
            checkpoint = Checkpoint.parse(opened.text)
        except (NoteError, ValueError) as exc:
            return Answer(403, f"the log's signature does not verify: {exc}\n")
        if old > checkpoint.size:
            return Answer(400, "old size is larger than the checkpoint's\n")
        with self._lock:
            state = self._load()
            held = state.get(origin)
            held_size = 0 if held is None else int(str(held["size"]))
            if old != held_size:
                return Answer(409, f"{held_size}\n", SIZE_TYPE)
            if held is not None:
                held_root = base64.b64decode(str(held["root"]))
                if old == checkpoint.size:
                    if held_root != checkpoint.root:
                        return Answer(409, f"{held_size}\n", SIZE_TYPE)
                else:
                    try:
                        merkle.verify_consistency(
                            old, checkpoint.size, held_root, checkpoint.root, proof
                        )
                    except merkle.ProofError as exc:
                        return Answer(422, f"the checkpoint does not extend {old}: {exc}\n")
            elif proof:
                return Answer(422, "the proof must be empty from size 0\n")
            state[origin] = {
                "size": checkpoint.size,
                "root": base64.b64encode(checkpoint.root).decode(),
                "note": note,
            }
            self._save(state)
        return Answer(200, self.signer.cosign(opened.text, int(utcnow().timestamp())))


def _parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    if len(body) > MAX_BODY:
        raise ValueError("request too large")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    head, separator, note = text.partition("\n\n")
    if not separator:
        raise ValueError("no empty line before the checkpoint")
    lines = head.split("\n")
    first = lines[0]
    size = first.removeprefix("old ")
    if first == size or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise ValueError("the first line must be: old <size>")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise ValueError(f"more than {MAX_PROOF_LINES} proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            proof.append(base64.b64decode(line, validate=True))
        except (binascii.Error, ValueError):
            raise ValueError("a proof line is not base64") from None
    return int(size), proof, note


def app(witness: Witness) -> Starlette:
    """The witness over HTTP: ``POST /add-checkpoint``."""

    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        answer = witness.add_checkpoint(body)
        return PlainTextResponse(answer.body, answer.status, media_type=answer.media_type)

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"])])


# -- the log's side ------------------------------------------------------------

# (url, body) -> (status, media type, body): httpx in the server, an
# in-process witness in tests.
Post = Callable[[str, bytes], tuple[int, str, bytes]]
Proof = Callable[[int, int], list[bytes]]


class Refused(Exception):
    """The witness would not cosign; the message says why."""


def submit(
    post: Post,
    url: str,
    witness_key: CosignatureVerifier,
    note: str,
    size: int,
    old: int,
    proof: Proof,
) -> Signature:
    """Ask the witness at ``url`` to cosign ``note`` (a checkpoint of
    ``size`` entries), from the ``old`` size it is believed to hold; on a
    409 once more from the size it says it holds. The verified cosignature,
    or :class:`Refused`."""
    for _attempt in range(2):
        body = f"old {old}\n" + "".join(
            base64.b64encode(h).decode() + "\n" for h in (proof(old, size) if old else [])
        )
        status, media_type, answer = post(
            url.rstrip("/") + "/add-checkpoint", (body + "\n" + note).encode()
        )
        if status == 409 and media_type.startswith(SIZE_TYPE):
            held = answer.decode().strip()
            if not held.isdigit() or int(held) == old or int(held) > size:
                raise Refused(f"the witness holds {held} entries and refuses {size}")
            old = int(held)
            continue
        if status != 200:
            raise Refused(
                f"the witness answered {status}: {answer.decode(errors='replace').strip()}"
            )
        try:
            opened = open_note(note + answer.decode(), [witness_key])
        except (NoteError, UnicodeDecodeError) as exc:
            raise Refused(f"the witness's cosignature does not verify: {exc}") from None
        if not opened.verified:
            raise Refused("no cosignature from the witness's key")
        return opened.verified[0]
    raise Refused("the witness changed its size twice")


def http_post(client: httpx.Client) -> Post:
    """:data:`Post` over HTTP: no redirects followed, the answer read up to
    :data:`MAX_BODY`."""

    def post(url: str, body: bytes) -> tuple[int, str, bytes]:
        with client.stream("POST", url, content=body, follow_redirects=False) as response:
            answer = b""
            for chunk in response.iter_bytes():
                answer += chunk
                if len(answer) > MAX_BODY:
                    break
            return response.status_code, response.headers.get("content-type", ""), answer[:MAX_BODY]

    return post
