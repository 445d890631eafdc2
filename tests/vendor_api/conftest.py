from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.conftest import Person
from tests.consent.conftest import Vendor, register_vendor
from tests.vendor_api.helpers import PREFERENCES, PROFILE, put


@pytest.fixture
def vendor(app: FastAPI) -> Vendor:
    return register_vendor(app)


@pytest.fixture
def other_vendor(app: FastAPI) -> Vendor:
    return register_vendor(app, "Farmácia Central")


@pytest.fixture
def ana_profile(ana: Person) -> Person:
    put(ana, "profile", PROFILE)
    put(ana, "preferences", PREFERENCES)
    return ana
