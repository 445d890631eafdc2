"""The OAuth 2.1 / OpenID Connect authorization server, on Authlib."""
