"""The fresh-process check: reload a file in a new Python process and compare.

The new process (`child.py`) imports only the modules that registered the
saved classes, under this backend or another, and its outputs are compared
with the original's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np

from .. import _configwalk, _registry
from .._compare import _difference, _numpy
from . import child
from .settings import Run
from .snapshot import _seed_states


def registered_modules(model: keras.Model) -> tuple[list[str], list[str]]:
    """The modules that registered every custom object the saved model names.

    Returns the importable modules, and a description of each registered
    class or function that no new process can import (defined in `__main__`
    or inside a function).
    """
    try:
        config = keras.saving.serialize_keras_object(model)
    except Exception:
        config = {}
    modules: set[str] = set()
    unimportable: set[str] = set()
    for name in _registered_names(config):
        obj = _registry.registered_object(name)
        if obj is None:
            continue
        module = getattr(obj, "__module__", "") or ""
        qualname = getattr(obj, "__qualname__", name)
        if "<locals>" in qualname or module == "__main__":
            where = "inside a function" if "<locals>" in qualname else "in __main__"
            unimportable.add(f"{qualname} (registered as {name!r}) is defined {where}")
        else:
            modules.add(module)
        # A class registered from another module than its own (a third-party
        # class): that module is what makes the name known.
        registrar = _registry.registering_module(name)
        if registrar == "__main__":
            unimportable.add(
                f"{qualname} (registered as {name!r}) is registered in __main__"
            )
        elif registrar:
            modules.add(registrar)
    return sorted(modules), sorted(unimportable)


def _registered_names(config: Any) -> list[str]:
    names: list[str] = []
    for item in _configwalk.walk(config):
        if isinstance(item, dict) and isinstance(item.get("registered_name"), str):
            function = item.get("class_name") == "function"
            if function and isinstance(item.get("config"), str):
                names.append(item["config"])
            else:
                names.append(item["registered_name"])
    return names


def _json_structure(inputs: Any) -> Any:
    """`inputs`' nesting with every array replaced by 0, as JSON can hold it."""
    if isinstance(inputs, dict):
        return {str(k): _json_structure(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [_json_structure(v) for v in inputs]
    return 0


def _check_fresh_process(
    run: Run, path: Path, problems: list[str], backend: str | None = None
) -> None:
    """Load `path` in a new process (under `backend`, or this one) and compare."""
    model, inputs, expected, settings = (
        run.model,
        run.inputs,
        run.expected,
        run.settings,
    )
    atol, rtol = settings.atol, settings.rtol
    where = "fresh process" + (f" under {backend}" if backend else "")
    modules, unimportable = registered_modules(model)
    # Flat arrays plus the structure (dict keys, nesting): a dict of arrays
    # saved as one .npz entry would be an object array, which needs pickle.
    arrays = [np.asarray(a) for a in keras.tree.flatten(inputs)]
    structure = _json_structure(inputs)
    stem = path.suffix + (f".{backend}" if backend else "")
    inputs_file = path.with_suffix(stem + ".inputs.npz")
    seeds_file = path.with_suffix(stem + ".seeds.npz")
    outputs_file = path.with_suffix(stem + ".outputs.npz")
    np.savez(inputs_file, *arrays)
    # Keras saves no SeedGenerator state: the new process starts its random
    # draws where the original's stood, as the in-process check does.
    np.savez(seeds_file, *[_numpy(v).copy() for v in _seed_states(model)])
    request = {
        "path": [p for p in sys.path if p],
        "modules": modules,
        "file": str(path),
        "inputs": str(inputs_file),
        "seeds": str(seeds_file),
        "structure": structure,
        "outputs": str(outputs_file),
        "using": settings.using,
    }
    # The child is this package's `child` module: the directory holding the
    # `serializable` package goes first on its path.
    root = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "KERAS_BACKEND": backend or keras.backend.backend(),
        "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p
        ),
    }
    result = subprocess.run(
        [sys.executable, "-m", child.__name__, json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    marker = [
        line for line in result.stdout.splitlines() if line.startswith(child.MARKER)
    ]
    if not marker:
        problems.append(
            f"{where} crashed (exit {result.returncode}): "
            f"{result.stderr.strip()[-500:]}"
        )
        return
    outcome = json.loads(marker[-1][len(child.MARKER) :])
    if "error" in outcome:
        hint = f" (the new process imported only {modules})"
        if unimportable:
            hint += (
                "; a new process cannot import "
                + "; ".join(unimportable)
                + ": move it to module level in an importable module"
            )
        problems.append(f"{where} could not load the file: {outcome['error']}{hint}")
        return
    with np.load(outputs_file, allow_pickle=False) as data:
        got = [data[f"arr_{i}"] for i in range(len(data.files))]
    flat_expected = keras.tree.flatten(expected)
    for index, (x, y) in enumerate(zip(flat_expected, got, strict=False)):
        a_tol, r_tol = atol, rtol
        if backend is not None:  # other kernels: agree to float precision
            low = x.dtype.itemsize <= 2 and x.dtype.kind not in "biu"
            a_tol, r_tol = (
                max(atol, 1e-2 if low else 1e-5),
                max(rtol, 1e-2 if low else 1e-4),
            )
        if x.shape != y.shape or not np.allclose(
            x, y, atol=a_tol, rtol=r_tol, equal_nan=True
        ):
            problems.append(f"{where} output {index} differs: {_difference(x, y)}")
