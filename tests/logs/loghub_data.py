"""The shared Loghub samples (../shared/data/loghub), for the log mining tests."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

LOGHUB = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "loghub"
SYSTEMS = ("HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Thunderbird", "OpenStack")


def raw_lines(system: str) -> list[str]:
    """The system's 2,000 raw log lines; skips the test when the shared data is missing."""
    path = LOGHUB / system / f"{system}_2k.log"
    if not path.is_file():
        pytest.skip(f"shared Loghub data missing at {path}")
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def structured(system: str) -> list[dict[str, str]]:
    """The system's ground truth: one row per raw line (Content, EventId, header fields)."""
    path = LOGHUB / system / f"{system}_2k.log_structured.csv"
    if not path.is_file():
        pytest.skip(f"shared Loghub data missing at {path}")
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
