"""The vendors' busiest calls, declared once: each a method, a path and the
small ASGI app that answers it (consent/oauth/endpoints.py,
vrm/vendor_api/reads.py).

From this one table come both ways in: :func:`lean_app`, which
``vrm.app.App`` asks before FastAPI's middleware and routing
(docs/performance.md#the-lean-vendor-paths), and :data:`ROUTES`, the
routes FastAPI's own dispatch finds, which answer 405 to every other
method. A path with a parameter is matched by its route's own pattern, so
the two ways in cannot disagree on which requests are lean, and the app
gets the same ``path_params`` either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from consent.oauth.endpoints import PATHS, vendor_endpoint
from vrm.vendor_api.reads import PREFIX, vendor_read


@dataclass(frozen=True)
class Lean:
    """One lean endpoint: a method, a Starlette path, its app."""

    method: str
    path: str
    app: ASGIApp


TABLE: tuple[Lean, ...] = (
    *(Lean("POST", path, vendor_endpoint) for path in PATHS),
    Lean("GET", PREFIX, vendor_read),
    Lean("GET", PREFIX + "/{category}", vendor_read),
)


def _route(lean: Lean) -> Route:
    route = Route(lean.path, lean.app, methods=[lean.method], include_in_schema=False)
    # Starlette adds HEAD to every GET route; a HEAD of a read would record
    # a read that sent no data, so it gets a 405 whose Allow offers GET alone.
    assert route.methods is not None  # noqa: S101 - given above
    route.methods.discard("HEAD")
    return route


# Joined to the app's routes as they are: include_router would rebuild
# them, HEAD and all.
ROUTES: list[Route] = [_route(lean) for lean in TABLE]
_EXACT: dict[tuple[str, str], ASGIApp] = {
    (lean.method, lean.path): lean.app
    for lean, route in zip(TABLE, ROUTES, strict=True)
    if not route.param_convertors
}
_PATTERNS: list[tuple[str, Route, ASGIApp]] = [
    (lean.method, route, lean.app)
    for lean, route in zip(TABLE, ROUTES, strict=True)
    if route.param_convertors
]


def lean_app(scope: Scope) -> tuple[ASGIApp, dict[str, Any]] | None:
    """The lean app that answers this request, and its path parameters, if
    the table has its method and path."""
    method, path = scope["method"], scope["path"]
    app = _EXACT.get((method, path))
    if app is not None:
        return app, {}
    for wanted, route, app in _PATTERNS:
        if method == wanted and (match := route.path_regex.match(path)) is not None:
            return app, {
                name: route.param_convertors[name].convert(value)
                for name, value in match.groupdict().items()
            }
    return None
