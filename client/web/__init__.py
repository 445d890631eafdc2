"""The customer's web pages, served by the server's own process.

Unlike the rest of ``client/`` (the SDK, the CLI), which reach the server
over HTTP only, these pages are a layer of the server: just below the
composition, which mounts them (``vrm/app.py``), and above the vendor API,
consent and the store (``pyproject.toml``, the layers contract). They call
the service functions the customer API calls, so every rule (what is valid,
who may see what, what an export holds, how an account is erased) has one
home; a page only reads a form, calls a service and renders the answer.

Every page is server-rendered and works without JavaScript, under the
strict headers of ``consent.pages.page`` (a Content-Security-Policy with a
fresh nonce, no framing, no caching). Every form carries a CSRF token: bound
to the login session once there is one (``consent.pages.csrf_token``), a
double-submit cookie before (sign-up, as ``/login`` does). Every POST
answers 303, or the form again with its errors.
"""
