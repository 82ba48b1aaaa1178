"""The command's modules: `cli` parses and dispatches; what a command finds
(`_summary`) and how it is printed (`_render`) are imported by the command
that runs, so `--help` and `--version` load neither, nor numpy or Keras."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_command_module(flag):
    code = (
        "import sys\n"
        "from serializable.cli import main\n"
        "try:\n"
        f"    main([{flag!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('numpy', 'h5py', 'keras', 'serializable._summary',\n"
        "         'serializable._render', 'serializable._inspect')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
