"""The fresh-process check's child: load one saved file in a new interpreter.

`fresh.py` runs `python -m serializable._roundtrip.child REQUEST`, where
REQUEST is JSON naming the file, the modules to import first (those that
registered the saved classes, and nothing else), and `.npz` files holding the
inputs, the original's random-seed state and where to write the outputs.
Keras is imported only after those modules. The child prints one line,
`@@RESULT@@{...}`, with `"error"` set when loading or calling failed.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

import numpy as np

MARKER = "@@RESULT@@"


def run(request: dict[str, Any]) -> dict[str, str]:
    """Load `request["file"]`, call it on the inputs, save the outputs."""
    sys.path[:0] = request["path"]
    for name in request["modules"]:
        importlib.import_module(name)
    import keras

    load: Any = keras.models.load_model
    if request["using"] == "serializable":
        import serializable

        load = serializable.load_model
    model = load(request["file"])
    with np.load(request["inputs"], allow_pickle=False) as data:
        arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
    with np.load(request["seeds"], allow_pickle=False) as data:
        seeds = [data[f"arr_{i}"] for i in range(len(data.files))]
    states = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    if len(states) == len(seeds):
        for variable, value in zip(states, seeds, strict=True):
            variable.assign(value)
    inputs = keras.tree.pack_sequence_as(request["structure"], arrays)
    outputs = model(inputs, training=False)
    flat = [
        np.asarray(keras.ops.convert_to_numpy(t)) for t in keras.tree.flatten(outputs)
    ]
    np.savez(request["outputs"], *flat)
    return {}


def main(argv: list[str]) -> None:
    result: dict[str, str] = {}
    try:
        result = run(json.loads(argv[0]))
    except BaseException as err:
        root = err
        while (cause := root.__cause__ or root.__context__) is not None:
            root = cause
        text = str(root).split(" Full object config:")[0]
        result["error"] = f"{type(root).__name__}: {text}"
    print(MARKER + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
