"""The verifiable log of consent, token and access events (docs/audit.md).

Entries are leaves of an RFC 9162 Merkle tree, published as C2SP
``tlog-tiles`` with ``tlog-checkpoint`` checkpoints in ``signed-note``
envelopes, so that tools written elsewhere can check the log.
"""
