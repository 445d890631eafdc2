"""OAuth 2.1 / OpenID Connect authorization server, grants and the audit log (issue 3)."""
