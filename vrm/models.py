"""Imports every table so that SQLModel.metadata knows them all (Alembic)."""

from vrm.accounts.models import Customer, LoginSession, LoginThrottle
from vrm.history.models import HistoryRecord
from vrm.keys.models import DataKey
from vrm.records.models import DocumentRecord

__all__ = [
    "Customer",
    "DataKey",
    "DocumentRecord",
    "HistoryRecord",
    "LoginSession",
    "LoginThrottle",
]
