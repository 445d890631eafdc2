"""A sync killed inside dlt's normalize commit (the package moved to
``load/normalized``, its extracted copy not yet deleted: dlt-hub/dlt#4446)
does not break every later sync with "Directory not empty".

The window is a few instructions wide, so the randomised kill test
(test_sync_kill.py) meets it only now and then; here the state it leaves is
made on purpose, from a real package."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest

from connectors.sync import finish_normalize

APPLIED: list[dict[str, Any]] = []


@dlt.destination(batch_size=10, loader_file_format="typed-jsonl", name="window_sink")
def window_sink(items: Any, table: Any) -> None:
    APPLIED.extend(dict(row) for row in items)


@dlt.resource(name="rows", write_disposition="append")
def rows() -> Iterator[dict[str, int]]:
    yield from ({"n": n} for n in range(5))


def _pipeline(folder: Path) -> Any:
    return dlt.pipeline(pipeline_name="window", pipelines_dir=str(folder), destination=window_sink)


@pytest.fixture
def killed_in_the_window(tmp_path: Path) -> Path:
    """A pipeline folder as a kill between normalize's commit and its
    delete leaves it: the package both committed and still extracted."""
    pipeline = _pipeline(tmp_path)
    pipeline.extract(rows())
    (load_id,) = pipeline.list_extracted_load_packages()
    extracted = Path(pipeline.working_dir) / "normalize" / "extracted" / load_id
    kept = tmp_path / "kept"
    shutil.copytree(extracted, kept)
    pipeline.normalize()
    assert pipeline.list_extracted_load_packages() == []
    shutil.copytree(kept, extracted)
    assert pipeline.list_extracted_load_packages() == [load_id]
    assert pipeline.list_normalized_load_packages() == [load_id]
    return tmp_path


def test_without_the_repair_every_run_fails(killed_in_the_window: Path) -> None:
    pipeline = _pipeline(killed_in_the_window)
    with pytest.raises(Exception, match="Directory not empty"):
        pipeline.normalize()


def test_the_repair_lets_the_package_load_once(killed_in_the_window: Path) -> None:
    APPLIED.clear()
    pipeline = _pipeline(killed_in_the_window)
    finish_normalize(pipeline)
    assert pipeline.list_extracted_load_packages() == []
    pipeline.normalize()
    pipeline.load()
    assert sorted(row["n"] for row in APPLIED) == [0, 1, 2, 3, 4]
    assert pipeline.list_normalized_load_packages() == []


def test_the_repair_leaves_a_package_not_yet_normalized(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    pipeline.extract(rows())
    (load_id,) = pipeline.list_extracted_load_packages()
    finish_normalize(pipeline)
    assert pipeline.list_extracted_load_packages() == [load_id]
