from __future__ import annotations

import pytest

from tests.conftest import Person
from tests.vendor_api.helpers import PREFERENCES, PROFILE, put


@pytest.fixture
def ana_profile(ana: Person) -> Person:
    put(ana, "profile", PROFILE)
    put(ana, "preferences", PREFERENCES)
    return ana
