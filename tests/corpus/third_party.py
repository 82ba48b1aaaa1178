"""Stands for a third-party library: a layer with a hand-written get_config,
registered nowhere (README "way 3" registers it from another module)."""

from __future__ import annotations

import keras


class TheirScale(keras.layers.Layer):
    def __init__(self, factors=(1.0, 2.0), **kwargs):
        super().__init__(**kwargs)
        self.factors = tuple(factors)

    def get_config(self):
        return {**super().get_config(), "factors": self.factors}

    def call(self, x):
        return x * self.factors[0] + self.factors[1]
