"""The ``vrm-me`` command (console script ``vrm-me = client.cli:main``).

Commands are in client/cli/app.py, the saved login in
client/cli/credentials.py. It reaches the store through the SDK only.
"""

from __future__ import annotations

from client.cli.app import Fail, app
from client.cli.credentials import CredentialsError
from client.errors import VRMError, VRMTransportError

__all__ = ["app", "main", "message"]


def message(error: Exception) -> str:
    """One line for stderr. A problem's title and detail, never a token
    (the SDK's messages name no header or body)."""
    if isinstance(error, VRMError) and not isinstance(error, VRMTransportError):
        if error.title in ("invalid_grant", "invalid_client") or error.status == 401:
            return "your login has ended or was revoked: run vrm-me login"
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def main() -> None:
    try:
        app()
    except (Fail, CredentialsError, VRMError) as error:
        from client.cli.app import err

        err.print(f"vrm-me: {message(error)}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
