"""The storage seam: how the hot paths reach the database.

- transaction.py: the one :class:`~vrm.storage.transaction.Transaction`
  domain code is handed (an ORM session's, or one request's part of a
  group commit), and the check that grouped work writes only the tables it
  declared;
- statements.py: Core statements compiled once and run on the driver's
  cursor (kept by hand where SQLAlchemy's per-execution work cost more than
  the database did, docs/performance.md#the-drivers-cursor-and-decoding);
- groupcommit.py: the vendor endpoints' group commit, and the reads that
  hold for a whole group.

The engine and the ORM session stay in vrm/db.py.
"""
