"""The grants the authorization server registers, one module per concern as
Authlib splits them: the authorization code (RFC 6749 4.1) with PKCE (RFC
7636) and OpenID Connect, the refresh token (RFC 6749 6) and the client
credentials (RFC 6749 4.4). No implicit, hybrid or password grant exists
(RFC 9700 2.1.2, 2.4)."""
