"""The original's optimizer and random-seed state, put back after the checks."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .._compare import _layers, _numpy
from .report import FormatReport


class _Snapshot:
    """The original's optimizer and random-seed state, taken after saving.

    The compile-state and training checks use the original model; they are
    compared with what the files hold, and everything is put back after.
    """

    def __init__(self, model: keras.Model) -> None:
        optimizer = getattr(model, "optimizer", None) if model.compiled else None
        self.optimizer_built = bool(optimizer is not None and optimizer.built)
        self.iterations = (
            int(_numpy(optimizer.iterations)) if optimizer is not None else 0
        )
        self.optimizer_values = (
            [_numpy(v).copy() for v in optimizer.variables]
            if optimizer is not None and self.optimizer_built
            else []
        )
        self.seeds = [(v, _numpy(v).copy()) for v in _seed_states(model)]

    def reset_seeds(self, model: keras.Model, *others: keras.Model) -> None:
        """Put the original's seed state back, and give `others` the same."""
        for variable, value in self.seeds:
            variable.assign(value)
        for other in others:
            theirs = _seed_states(other)
            if len(theirs) == len(self.seeds):
                for (_, value), variable in zip(self.seeds, theirs, strict=True):
                    if tuple(variable.shape) == value.shape:
                        variable.assign(value)

    def align_seeds(self, restored: keras.Model, report: FormatReport) -> None:
        """Start the reload's random draws where the original's stood.

        Keras saves no `keras.random.SeedGenerator` state: a reloaded layer
        draws from its initial seed again. That is a known Keras limit, not a
        loss of anything learned; it is noted in the report, and the outputs
        are compared from the same random state.
        """
        theirs = _seed_states(restored)
        if len(theirs) != len(self.seeds):
            return
        differ = []
        owners = _seed_owners(restored)
        for (_, value), other in zip(self.seeds, theirs, strict=True):
            if tuple(other.shape) != value.shape:
                return
            if not np.array_equal(_numpy(other), value):
                differ.append(owners.get(id(other), other.path))
            other.assign(value)
        if differ:
            report.notes.append(
                "random seed state of "
                + ", ".join(f"'{p}'" for p in differ)
                + " is not saved by Keras (keras.random.SeedGenerator): after "
                "reload random draws restart from the initial seed. Outputs were "
                "compared from the same seed state; reseed after loading if the "
                "draws must continue"
            )


def _seed_owners(model: keras.Model) -> dict[int, str]:
    """id(seed state variable) -> "layer/attribute" of the generator owning it."""
    owners: dict[int, str] = {}
    for layer in [model, *_layers(model)]:
        for key, value in vars(layer).items():
            if isinstance(value, keras.random.SeedGenerator):
                owners.setdefault(id(value.state), f"{layer.name}/{key.lstrip('_')}")
    return owners


def _seed_states(model: keras.Model) -> list[Any]:
    """The state variables of every `SeedGenerator` the model's layers own."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]
