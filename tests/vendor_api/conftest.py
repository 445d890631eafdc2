from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.consent.conftest import Vendor, register_vendor


@pytest.fixture
def vendor(app: FastAPI) -> Vendor:
    return register_vendor(app)
