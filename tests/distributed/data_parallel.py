"""Custom models trained under `keras.distribution.DataParallel` save and reload.

Run in a fresh interpreter (tests/test_distribution.py does): JAX reads
`XLA_FLAGS` once, when it initialises, so the two host devices must be asked
for before anything imports it.

    KERAS_BACKEND=jax python tests/distributed/data_parallel.py OUTDIR

Prints one `PASS ...` line per check that passed and `DONE` at the end; any
failure is an exception (non-zero exit status).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if os.environ.get("KERAS_BACKEND") != "jax":
    sys.exit("data_parallel.py needs KERAS_BACKEND=jax")

# Two host (CPU) devices, before JAX initialises (also on a machine with a GPU).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=2"]
).strip()

import dist_blocks
import jax
import keras
import numpy as np


def main(directory: Path) -> None:
    devices = keras.distribution.list_devices("cpu")
    assert len(devices) == 2, devices

    def fresh() -> keras.distribution.DataParallel:
        return keras.distribution.DataParallel(devices=devices)

    def per_device(variable: object) -> list[np.ndarray]:
        value = getattr(variable, "value", variable)
        assert isinstance(value, jax.Array), type(value)
        # A full copy per device when replicated (DataParallel), a slice when
        # sharded (ModelParallel's layout).
        return [np.asarray(shard.data) for shard in value.addressable_shards]

    def model_parallel() -> keras.distribution.ModelParallel:
        # The Gated layer's inner Dense kernel (6, 8), and so its Adam slots,
        # split column-wise over the two devices; the rest replicated.
        mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], devices)
        layout = keras.distribution.LayoutMap(mesh)
        layout[".*/dense(_[0-9]+)?/kernel"] = (None, "model")
        return keras.distribution.ModelParallel(
            layout_map=layout, batch_dim_name="batch"
        )

    for name in ("tagger", "ctc"):
        for line in dist_blocks.run(name, directory, fresh, per_device):
            print("PASS", line, flush=True)
        for line in dist_blocks.roundtrip(name, directory, fresh):
            print("PASS", line, flush=True)
    # Sharded, not only replicated, variables: the subclassed model only.
    for line in dist_blocks.run(
        "tagger", directory, model_parallel, per_device, sharded=True, tag="sharded "
    ):
        print("PASS", line, flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {Path(__file__).name} OUTDIR  (where the files go)")
    main(Path(sys.argv[1]))
