from __future__ import annotations

from pathlib import Path

import pytest

from omoi.runtime.errors import InputError
from omoi.runtime.run.begin import RunLock, is_live


def test_one_driver_per_run_and_liveness_follows_the_lock(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "r1"
    assert not is_live(run_dir)
    first = RunLock(run_dir)
    first.acquire()
    assert is_live(run_dir)
    with pytest.raises(InputError, match="being driven by another process"):
        RunLock(run_dir).acquire()
    first.release()
    assert not is_live(run_dir)
    RunLock(run_dir).acquire()  # free again: a resume may take it
