import pytest

# Before anything imports it: the kit's asserts then explain their failures
# as a test module's do.
pytest.register_assert_rewrite("tests.kit")
