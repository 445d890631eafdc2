"""Customer accounts: sign-up, sessions, passwords, throttling, erasure."""
