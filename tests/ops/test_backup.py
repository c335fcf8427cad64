"""Backups and disaster recovery (M34): the point-in-time restore drill with pgBackRest on a
private durable cluster: write rows, note the time, write more (and take a later backup),
restore to that time into a new data directory, and find exactly the first rows."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from samia.ops.backup import drill


@pytest.mark.slow
def test_point_in_time_restore_drill() -> None:
    work = Path(tempfile.mkdtemp(prefix="samia-drill-", dir="/var/tmp" if os.geteuid() == 0 else None))
    work.chmod(0o755)
    result = drill(work, rows=150)
    print(result.report())  # RPO/RTO achieved, in the test log
    assert result.ok, result.report()
    assert result.restored_rows == result.rows_before_target == 300
    assert result.lost_before_target == 0 and result.leaked_after_target == 0
    assert not (work / "restored" / "pgdata").exists(), "the drill cleans up after itself"
