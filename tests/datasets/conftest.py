from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _snapshot_dir(settings, tmp_path):
    settings.TANDEM_SNAPSHOT_DIR = tmp_path / "snapshots"
    settings.TANDEM_SNAPSHOT_EAGER_FORMATS = []  # the formats' own tests write them; these read data.jsonl


@pytest.fixture(autouse=True)
def progress_calls(monkeypatch):
    """Progress is published on a second connection ("jobs"), which cannot see a test's uncommitted Job: record
    the calls instead (as tests/annotation/services/test_importing.py does)."""
    import annotation.datasets.build as build

    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(build, "_progress", lambda job_id, done, total: calls.append((job_id, done, total)))
    return calls
