"""The SDK's one exception tree.

``VRMError``
    Every failure. A non-2xx answer raises it with the RFC 9457 problem
    details the server sent (``type``, ``title``, ``status``, ``detail``,
    ``instance``, and any extra members in ``extra``, such as ``errors`` on
    a 422 or ``current_etag`` on a 412).
    A 2xx answer the SDK cannot read (not the JSON the API publishes)
    raises it too, with the status and no problem details.
``VRMTransportError(VRMError)``
    The server could not be reached or did not answer in time (any
    ``httpx.RequestError``); ``status`` is None. Its message is one line
    naming the request, never its body, so a password or session cookie
    never ends up in a log.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

_MEMBERS = ("type", "title", "status", "detail", "instance")


class VRMError(Exception):
    """A request failed; the server's problem details are attributes."""

    def __init__(
        self,
        title: str,
        *,
        status: int | None = None,
        type: str = "about:blank",
        detail: str | None = None,
        instance: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.title = title
        self.status = status
        self.type = type
        self.detail = detail
        self.instance = instance
        self.extra: dict[str, Any] = extra or {}
        head = f"{status} {title}" if status is not None else title
        super().__init__(f"{head}: {detail}" if detail else head)

    @classmethod
    def from_response(cls, response: httpx.Response) -> VRMError:
        """The error a non-2xx answer stands for. A body that is not problem
        details (a proxy's HTML page) gives ``about:blank`` and the status's
        reason phrase, as RFC 9457 section 4.2 reads a bare status."""
        problem: dict[str, Any] = {}
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict):
            problem = body
        title = problem.get("title")
        detail = problem.get("detail")
        instance = problem.get("instance")
        kind = problem.get("type")
        return cls(
            title if isinstance(title, str) else response.reason_phrase or "HTTP error",
            status=response.status_code,
            type=kind if isinstance(kind, str) else "about:blank",
            detail=detail if isinstance(detail, str) else None,
            instance=instance if isinstance(instance, str) else None,
            extra={k: v for k, v in problem.items() if k not in _MEMBERS},
        )


class VRMTransportError(VRMError):
    """The request never got an answer: connection refused, timed out,
    broken off. The httpx exception is its ``__cause__``."""

    @classmethod
    def wrap(cls, method: str, url: str, error: httpx.RequestError) -> VRMTransportError:
        """``method url failed: reason`` on one line. The SDK's URLs carry no
        query with a credential in it, and no header or body is named, so no
        password, cookie or token gets into the message."""
        lines = str(error).splitlines()
        reason = lines[0] if lines else type(error).__name__
        return cls(f"{method} {url} failed: {reason}")
