"""Every error path gives the documented message: object, argument, received, fix."""

from __future__ import annotations

import enum
import importlib
import sys
import textwrap

import keras
import numpy as np
import pytest

from serializable import (
    ConfigDecodeError,
    ConfigVersionError,
    SerializableLayer,
    UnknownConfigKeyError,
    UnserializableArgumentError,
)


class Takes(SerializableLayer, package="test_errors"):
    def __init__(self, fn=None, units=4, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn
        self.units = units

    def call(self, x):
        return x


def unregistered_function(x):
    return x


class UnregisteredLayer(keras.layers.Layer):
    pass


def make_closure():
    scale = 3.0

    def scaled(x):
        return x * scale

    return scaled


class TestUnserializableArguments:
    @pytest.mark.parametrize(
        ("value", "received", "fix"),
        [
            (lambda x: x, "fn=<function", "Replace the lambda with a named function"),
            (make_closure(), "fn=<function make_closure.<locals>.scaled", "Decorate"),
            (unregistered_function, "fn=<function unregistered_function", "Decorate"),
            (
                UnregisteredLayer(),
                "type tests.test_errors.UnregisteredLayer",
                "Decorate class UnregisteredLayer with",
            ),
            (object(), "fn=<object object", "Convert it to one of the supported types"),
            (np.array([{}, None], dtype=object), "type numpy.ndarray", "dtype object"),
            (
                str.upper,
                "fn=<method 'upper' of 'str' objects>",
                "closures, bound methods",
            ),
            (int, "fn=<class 'int'>", "Pass an instance or a name"),
        ],
        ids=[
            "lambda",
            "closure",
            "unregistered_function",
            "unregistered_layer",
            "object",
            "object_array",
            "method",
            "class",
        ],
    )
    def test_refused_at_construction(self, value, received, fix):
        """Unsupported values raise when the layer is created, naming all the parts."""
        with pytest.raises(UnserializableArgumentError) as info:
            Takes(fn=value)
        message = str(info.value)
        assert message.startswith(
            "Takes.__init__ argument 'fn' cannot be saved: expected"
        )
        assert "Received: " in message and received in message
        assert fix in message
        assert isinstance(info.value, TypeError)

    def test_nested_location_is_named(self):
        """A bad value deep inside a container is reported with its path."""
        with pytest.raises(UnserializableArgumentError) as info:
            Takes(fn={"layers": [1, (2, object())]})
        assert "argument 'fn['layers'][1][1]'" in str(info.value)

    def test_open_file_is_refused(self, tmp_path):
        """An open file handle is refused, and never half-written to a model file."""
        with open(tmp_path / "f.txt", "w") as handle:
            with pytest.raises(UnserializableArgumentError, match="_io.TextIOWrapper"):
                Takes(fn=handle)

    def test_local_enum_is_refused(self):
        """An Enum defined inside a function cannot be found at load: refused early."""

        class Local(enum.Enum):
            A = 1

        with pytest.raises(
            UnserializableArgumentError, match="Move Local to module level"
        ):
            Takes(fn=Local.A)

    def test_no_file_written_for_unsaveable_model(self, tmp_path):
        """Nothing reaches disk because the model cannot even be built."""
        with pytest.raises(UnserializableArgumentError):
            keras.Sequential([keras.Input((2,)), Takes(fn=lambda x: x)])
        assert list(tmp_path.iterdir()) == []


class TestGetConfigWithoutConstruction:
    def test_object_created_before_registration(self):
        """An instance made before its class was registered says how to fix it."""

        class LateLayer(keras.layers.Layer):
            def __init__(self, table, **kwargs):
                super().__init__(**kwargs)
                self.table = table

        early = LateLayer(np.ones(2))
        from serializable import register_keras_serializable

        register_keras_serializable(package="test_errors_late")(LateLayer)
        assert LateLayer(np.ones(2)).get_config()["table"]["shape"] == [2]
        with pytest.raises(UnserializableArgumentError) as info:
            early.get_config()
        message = str(info.value)
        assert "Cannot generate the config of LateLayer object" in message
        assert "expected it to be created by calling LateLayer(...)" in message
        assert "Create it by calling the class." in message


class TestUnknownKeys:
    def test_unknown_key_suggests_closest_parameter(self):
        """A misspelled or stale key names the key and the closest parameter."""
        config = Takes(units=3).get_config()
        config["unit"] = config.pop("units")
        with pytest.raises(UnknownConfigKeyError) as info:
            Takes.from_config(config)
        message = str(info.value)
        assert "Takes.from_config got an unknown config key 'unit'" in message
        assert "Did you mean 'units'?" in message
        assert "Received: unit=3" in message
        assert "config_version" in message

    def test_unknown_key_through_load_model(self, tmp_path):
        """The same message reaches the user through keras.models.load_model."""
        import json
        import zipfile

        model = keras.Sequential([keras.Input((2,)), Takes(units=3, name="takes")])
        path = tmp_path / "model.keras"
        model.save(path)
        with zipfile.ZipFile(path) as archive:
            members = {n: archive.read(n) for n in archive.namelist()}
        config = json.loads(members["config.json"])
        layer = config["config"]["layers"][1]["config"]
        layer["unitz"] = layer.pop("units")
        members["config.json"] = json.dumps(config).encode()
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        with pytest.raises(
            Exception, match="unknown config key 'unitz'.*Did you mean 'units'"
        ):
            keras.models.load_model(path)


class TestTaggedValues:
    def test_unknown_tag_kind(self):
        """A tag from a newer library version is reported, not misread."""
        config = Takes().get_config()
        config["fn"] = {"__serializable__": "hologram", "data": 1}
        with pytest.raises(
            ConfigDecodeError, match="Unknown tagged value kind 'hologram'"
        ):
            Takes.from_config(config)

    def test_enum_of_unimported_module_is_not_imported(self):
        """An Enum from a module that is not loaded is refused, never imported."""
        config = Takes().get_config()
        config["fn"] = {
            "__serializable__": "enum",
            "enum": "some_module_nobody_imported:Color",
            "member": "RED",
        }
        with pytest.raises(ConfigDecodeError) as info:
            Takes.from_config(config)
        assert "some_module_nobody_imported" not in sys.modules
        message = str(info.value)
        # Named as the file's claim, never as plain advice to import it.
        assert "claims it comes from module 'some_module_nobody_imported'" in message
        assert "import only a trusted file's modules" in message
        assert "`import" not in message


MODULE_V1 = """
import keras
import serializable

class Gate(serializable.SerializableLayer, package="evolution"):
    def __init__(self, units, threshold=0.5, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.threshold = threshold

    def call(self, x):
        return x * self.threshold
"""

MODULE_V2 = """
import keras
import serializable

class Gate(serializable.SerializableLayer, package="evolution"):
    config_version = 2

    def __init__(self, width, cutoff=0.5, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        self.cutoff = cutoff

    @classmethod
    def upgrade_config(cls, config, from_version):
        if from_version < 2:
            config["width"] = config.pop("units")
            config["cutoff"] = config.pop("threshold")
        return config

    def call(self, x):
        return x * self.cutoff
"""


@pytest.fixture
def evolving_module(tmp_path, monkeypatch):
    """A module that is edited between saving and loading, like a real refactor."""
    source = tmp_path / "evolving_layers.py"
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(text):
        source.write_text(textwrap.dedent(text))
        if "evolving_layers" in sys.modules:
            importlib.invalidate_caches()
            return importlib.reload(sys.modules["evolving_layers"])
        return importlib.import_module("evolving_layers")

    yield write
    sys.modules.pop("evolving_layers", None)


class TestConfigEvolution:
    def test_renamed_arguments_load_through_upgrade_hook(
        self, evolving_module, fmt, tmp_path
    ):
        """A file saved before an argument was renamed loads after the rename."""
        v1 = evolving_module(MODULE_V1)
        model = keras.Sequential(
            [keras.Input((2,)), v1.Gate(4, threshold=0.25, name="gate")]
        )
        path = tmp_path / f"old.{fmt}"
        model.save(path)

        v2 = evolving_module(MODULE_V2)
        layer = keras.models.load_model(path).get_layer("gate")

        assert type(layer) is v2.Gate
        assert (layer.width, layer.cutoff) == (4, 0.25)
        assert layer.get_config()["__serializable__"] == {"version": 2}

    def test_rename_without_hook_names_the_key(self, evolving_module):
        """Without an upgrade hook the old key is named with the closest new parameter."""
        v1 = evolving_module(MODULE_V1)
        old = v1.Gate(4).get_config()
        v2 = evolving_module(
            MODULE_V2.replace("config_version = 2", "").split("    @classmethod")[0]
            + "\n    def call(self, x):\n        return x\n"
        )
        with pytest.raises(UnknownConfigKeyError, match="unknown config key 'units'"):
            v2.Gate.from_config(old)

    def test_newer_version_is_refused(self):
        """A config from a newer class version says to upgrade the package."""
        config = Takes().get_config()
        config["__serializable__"] = {"version": 3}
        with pytest.raises(ConfigVersionError) as info:
            Takes.from_config(config)
        assert "config_version 3, newer than this code understands" in str(info.value)
        assert "Upgrade the package that defines Takes" in str(info.value)

    def test_old_version_without_hook(self):
        """An older config with no upgrade hook explains the hook to write."""
        config = Versioned(1).get_config()
        config["__serializable__"] = {"version": 1}
        with pytest.raises(ConfigVersionError, match="defines no upgrade hook"):
            Versioned.from_config(config)

    def test_hook_must_return_a_dict(self):
        """An upgrade hook that forgets to return the config is reported."""
        config = BadHook(1).get_config()
        config["__serializable__"] = {"version": 1}
        with pytest.raises(
            ConfigVersionError, match="must return the upgraded config dict"
        ):
            BadHook.from_config(config)


class Versioned(SerializableLayer, package="test_errors"):
    config_version = 2

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = size


class BadHook(Versioned, package="test_errors"):
    @classmethod
    def upgrade_config(cls, config, from_version):
        config["size"] = 1
