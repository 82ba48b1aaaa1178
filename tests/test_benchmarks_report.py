"""tools/bench_report.py: benchmarks/README.md says what benchmarks/results/ holds.

Standard library and pytest only: the tool imports no Keras.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "bench_report.py"
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture
def copy(tmp_path: Path) -> tuple[Path, Path]:
    """The repository's results folder and README, copied to tmp_path."""
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    readme = tmp_path / "README.md"
    shutil.copy(README, readme)
    return results, readme


def test_readme_tables_match_the_results_files():
    """Every generated table in benchmarks/README.md is what its data renders to,
    and every results file has its place there."""
    result = _run("--check")
    assert result.returncode == 0, result.stdout


def test_every_results_file_says_how_it_was_measured():
    """Each results file holds rows and a header; a measured one uses the
    harness's statistic, a transcribed one says where its figures come from."""
    files = sorted(RESULTS.glob("*.json"))
    assert files
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        header = data["header"]
        assert data["rows"] and data["columns"], path.name
        if header.get("transcribed"):
            assert header["note"], path.name
        else:
            assert header["statistic"] == "min", path.name
            assert header["date"] and header["commit"] and header["cpus"], path.name


def test_check_fails_on_a_hand_edited_table(copy):
    """A number changed by hand in a generated table fails the check, with the
    diff and the command that fixes it."""
    results, readme = copy
    text = readme.read_text(encoding="utf-8")
    start = text.index("<!-- bench:bench_config:begin")
    row = text.index("\n| construct", start) + 1
    line = text[row : text.index("\n", row)]
    edited = line.replace(line.split(" | ")[1], "1.0", 1)
    readme.write_text(text.replace(line, edited), encoding="utf-8")
    result = _run("--check", "--results", results, "--readme", readme)
    assert result.returncode == 1
    assert f"-{edited}" in result.stdout and f"+{line}" in result.stdout
    assert "python3 dev.py bench-report --write" in result.stdout


def test_check_fails_on_a_changed_results_file_until_written(copy):
    """New results make the check fail until --write renders them."""
    results, readme = copy
    path = results / "bench_config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["rows"][0]["ratio"] = 9.999
    path.write_text(json.dumps(data), encoding="utf-8")
    assert _run("--check", "--results", results, "--readme", readme).returncode == 1
    assert _run("--write", "--results", results, "--readme", readme).returncode == 0
    assert "| 9.999x |" in readme.read_text(encoding="utf-8")
    assert _run("--check", "--results", results, "--readme", readme).returncode == 0


def test_check_fails_on_a_results_file_without_a_block(copy):
    """A results file the README has no place for is reported."""
    results, readme = copy
    shutil.copy(results / "bench_config.json", results / "bench_new.json")
    result = _run("--check", "--results", results, "--readme", readme)
    assert result.returncode == 1
    assert "bench_new.json has no" in result.stdout


def test_check_fails_on_a_block_without_a_results_file(copy):
    """A README block whose results file is gone is reported."""
    results, readme = copy
    (results / "bench_config.json").unlink()
    result = _run("--check", "--results", results, "--readme", readme)
    assert result.returncode == 1
    assert "bench:bench_config has no results file" in result.stdout


def test_profiles_name_functions_that_exist():
    """Each `--profile` phase names a function in a module of src/: a module
    moved or renamed makes the profile's phase silently read 0 ms (it did for
    `assert_roundtrip` once `_roundtrip` became a package)."""
    import re

    src = ROOT / "src"
    pairs = set()
    for script in (ROOT / "benchmarks").glob("*.py"):
        text = script.read_text(encoding="utf-8")
        found = re.findall(r'"(serializable/[\w/]+\.py)",\s*"(\w+)"', text)
        pairs.update((script.name, path, name) for path, name in found)
    assert len(pairs) > 20, "the profile phase tables were not found"
    missing = [
        f"{script}: {path} {name}"
        for script, path, name in sorted(pairs)
        if not (src / path).exists()
        or not re.search(rf"def {name}\b", (src / path).read_text(encoding="utf-8"))
    ]
    assert missing == []
