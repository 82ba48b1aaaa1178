"""The user's module that registers a third-party class (README "way 3")."""

from __future__ import annotations

import serializable

from .third_party import TheirScale

serializable.register_keras_serializable(package="corpus_third_party")(TheirScale)
