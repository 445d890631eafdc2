"""A failed sync is one line: the connector's own errors in their words,
a file system error with the system's words and the files it names (what
the operator needs to act), anything else by its class alone, since its
text may hold what must not be shown."""

from __future__ import annotations

import errno

from dlt.pipeline.exceptions import PipelineStepFailed

from connectors.cli import _why
from connectors.store import StoreError


def test_a_connector_error_is_said_in_its_own_words() -> None:
    assert _why(StoreError("the store does not answer (ConnectError)")) == (
        "the store does not answer (ConnectError)"
    )


def test_a_file_system_error_names_what_and_where() -> None:
    failed = OSError(errno.ENOTEMPTY, "Directory not empty", "/s/load/new/1", None, "/s/load/n/1")
    assert _why(failed) == (
        "the sync failed (OSError: Directory not empty: /s/load/new/1 -> /s/load/n/1)"
    )
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "/s/state.db")
    assert _why(missing) == (
        "the sync failed (FileNotFoundError: No such file or directory: /s/state.db)"
    )


def test_a_step_dlt_wraps_is_unwrapped() -> None:
    inner = OSError(errno.ENOSPC, "No space left on device")
    wrapped = PipelineStepFailed.__new__(PipelineStepFailed)
    wrapped.exception = inner
    assert _why(wrapped) == "the sync failed (OSError: No space left on device)"


def test_anything_else_is_named_by_its_class_only() -> None:
    assert _why(ValueError("token=abc123 was refused")) == "the sync failed (ValueError)"
