"""examples/ocr_ctc.py runs from a fresh interpreter, as its docstring tells users to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_ocr_ctc_quick_run_reloads_both_models_in_both_formats(tmp_path):
    """ocr_ctc.py --quick trains, saves both models as .keras and .h5, and fresh processes decode them identically."""
    # The suite's backend (conftest.py): the example runs on each in turn.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ocr_ctc.py"), "--quick"]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OK: both models reloaded from .keras and .h5 decoded identically" in out
    for model in ("inference", "training"):
        for suffix in ("keras", "h5"):
            assert (tmp_path / f"ocr_{model}.{suffix}").is_file()
            line = next(
                line for line in out.splitlines() if f"{model} model .{suffix} " in line
            )
            assert "decoded identically" in line, out
