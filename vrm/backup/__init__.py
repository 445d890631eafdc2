"""Backups of the database and the key store together (docs/operations.md).

``journal`` is the erasure journal the store writes to on every erasure;
``sealing`` the sealed file format; ``database`` the database copy for
SQLite and PostgreSQL; ``archive`` the ``create`` and ``restore`` use cases;
``replay`` the erasures redone after a restore; ``cli`` the ``vrm backup``
commands. Only ``journal`` belongs to the store's layer: the rest sit with
the composition (they copy every table, and a replay erases with the hooks
of the layers above, vrm/hooks.py).
"""
