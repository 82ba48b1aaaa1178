"""The examples run from a fresh interpreter, exactly as the README tells users to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_runs_and_outputs_match():
    """examples/quickstart.py trains, saves both formats, reloads, outputs match."""
    # The suite's backend (conftest.py): the example runs on each in turn.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: outputs match after reload in both formats" in result.stdout
    assert result.stdout.count("outputs identical: True") == 2
