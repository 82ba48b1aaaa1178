"""Files written by Keras 2 (`tf.keras` up to TF 2.15, the `tf-keras` package).

Keras 3 reads almost none of them: their configs hold keys it rejects, name
Keras 2's own modules and optimizers, index nested models' nodes from 1, and
store optimizer slots in Keras 2's layout (no learning-rate variable, slots
named `Adam/m/dense/kernel:0`). This module rewrites the configs (never the
weights) into what Keras 3 builds, and maps the optimizer slots by role, so
the next training step equals Keras 2's.

Everything here reads JSON and array data only: no class named in the file is
imported, no bytecode is run (a `Lambda` layer still needs Keras's own
`safe_mode=False`), and a class the file needs but this process does not have
is reported with every other one, never guessed.

Entry points: `is_keras2` (a file's metadata says Keras 2), `translate` (the
configs, in place; returns what was changed, for `serializable inspect`),
`load` (used by `load_model`).
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from . import _configwalk, _keras_compat, _registry
from ._compile import compile_from_training
from ._errors import MissingClassError, ModelFileError, docs_url

if TYPE_CHECKING:
    from ._files import LoadOptions

DOCS = docs_url("migrating-from-keras-2")

# Optimizers whose Keras 2 slot layout is known: the blocks of slot roles, in
# the order Keras 2's `build` creates them (roles within a block interleaved
# per variable), and the Keras 3 attribute holding each role's slots.
_ROLES = _keras_compat.OPTIMIZER_SLOT_ATTRIBUTES

# Keys Keras 2 layers write that Keras 3 rejects (or warns about), by class.
_RNN = ("LSTM", "GRU", "SimpleRNN", "RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")
_DROP_KEYS: dict[str, tuple[str, ...]] = {
    **{name: ("time_major",) for name in _RNN},
    "SeparableConv1D": ("groups", "kernel_initializer", "kernel_regularizer",
                        "kernel_constraint"),
    "SeparableConv2D": ("groups", "kernel_initializer", "kernel_regularizer",
                        "kernel_constraint"),
    "DepthwiseConv1D": ("groups", "kernel_initializer", "kernel_regularizer",
                        "kernel_constraint"),
    "DepthwiseConv2D": ("groups", "kernel_initializer", "kernel_regularizer",
                        "kernel_constraint"),
    "Conv1DTranspose": ("groups",),
    "Conv2DTranspose": ("groups",),
    "Conv3DTranspose": ("groups",),
    "MultiHeadAttention": ("query_shape", "key_shape", "value_shape",
                           "softmax_robust_masking"),
    "Embedding": ("input_length",),
}  # fmt: skip

_AXIS_INT = ("BatchNormalization",)

# Keras 2 ops recorded as layers; Keras 3 has no such layers.
TF_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")

# One-line Keras 3 replacements for the tf.* calls Keras 2 recorded most.
_OP_REPLACEMENTS = {
    "__operators__.add": "x + y (or keras.layers.Add())",
    "__operators__.getitem": "x[...] in a custom layer, or keras.ops.slice",
    "math.multiply": "keras.ops.multiply(x, y) (or keras.layers.Multiply())",
    "nn.relu": 'keras.layers.Activation("relu")',
    "reshape": "keras.layers.Reshape(target_shape)",
    "concat": "keras.layers.Concatenate(axis=...)",
    "math.reduce_mean": "keras.ops.mean(x, axis=...)",
    "math.square": "keras.ops.square(x)",
}


@dataclass
class Translation:
    """What `translate` changed, and what the file needs that is missing."""

    changes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    tf_ops: list[str] = field(default_factory=list)
    lambdas: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)

    def note(self, change: str) -> None:
        if change not in self.changes:
            self.changes.append(change)


def is_keras2(contents: Any) -> bool:
    """Whether the file's metadata says Keras 2 wrote it."""
    version = getattr(contents, "keras_version", None)
    return isinstance(version, str) and version.startswith("2.")


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------


def translate(
    contents: Any, custom_objects: dict[str, Any] | None = None
) -> Translation:
    """Rewrite `contents.model_config` and `contents.compile_config` in place
    into what Keras 3 builds; weights are untouched."""
    result = Translation()
    custom = custom_objects or {}
    contents.model_config = _model(contents.model_config, result, custom)
    if contents.compile_config:
        training = _training(contents.compile_config, contents.format, result, custom)
        optimizer = training.get("optimizer_config")
        mixed = "'mixed_float16'" in str(result.changes)
        if (
            mixed
            and isinstance(optimizer, dict)
            and (optimizer.get("class_name") != "LossScaleOptimizer")
        ):
            # Keras 2 wrapped it when compiling; its `.keras` config names
            # the inner optimizer only.
            training["optimizer_config"] = {
                "module": "keras.optimizers",
                "class_name": "LossScaleOptimizer",
                "config": {"inner_optimizer": optimizer},
                "registered_name": None,
            }
            result.note("mixed_float16: optimizer wrapped in LossScaleOptimizer")
        contents.compile_config = training
    return result


def _model(config: dict[str, Any], result: Translation, custom: dict) -> Any:
    config = copy.deepcopy(config)
    _layer(config, result, custom, nested=set())
    return config


def _layer(entry: Any, result: Translation, custom: dict, nested: set[str]) -> None:
    """Fix one layer (or model) config entry, recursively."""
    if not isinstance(entry, dict):
        return
    class_name = entry.get("class_name")
    inner = entry.get("config")
    if not isinstance(class_name, str) or not isinstance(inner, dict):
        return
    _module(entry, result)
    class_name = _resolve_class(entry, result, custom)
    if "compile_config" in entry:
        entry.pop("compile_config")  # compiled separately (see `_training`)
    if class_name == "MultiHeadAttention" and "build_config" in entry:
        # Keras 2 records the query shape only; Keras 3 builds it when called.
        entry.pop("build_config")
    if class_name in TF_OP_LAYERS:
        function = inner.get("function")
        result.tf_ops.append(str(function))
    if class_name == "Lambda":
        result.lambdas.append(str(inner.get("name")))
        _lambda(inner)
    for key in _DROP_KEYS.get(class_name, ()):
        if key in inner:
            inner.pop(key)
            result.note(f"{class_name}: dropped `{key}` (not a Keras 3 argument)")
    if class_name == "LeakyReLU" and "alpha" in inner:
        inner["negative_slope"] = inner.pop("alpha")
        result.note("LeakyReLU: `alpha` -> `negative_slope`")
    if class_name in _AXIS_INT:
        axis = inner.get("axis")
        if isinstance(axis, list) and len(axis) == 1:
            inner["axis"] = axis[0]
            result.note(f"{class_name}: axis {axis} -> {axis[0]}")
    if class_name != "InputLayer" and "batch_input_shape" in inner:
        inner.pop("batch_input_shape")
        result.note("dropped `batch_input_shape` from layers (the Input holds it)")
    if class_name == "InputLayer":
        if inner.pop("ragged", False):
            result.note("InputLayer: ragged inputs are not supported by Keras 3")
    dtype = inner.get("dtype")
    if isinstance(dtype, dict) and dtype.get("class_name") == "Policy":
        name = dtype.get("config", {}).get("name")
        inner["dtype"] = name
        result.note(f"dtype policy {name!r}: Keras 2 `Policy` -> Keras 3 policy name")
    for key in ("layer", "backward_layer", "cell"):  # wrappers and RNNs
        if isinstance(inner.get(key), dict):
            _layer(inner[key], result, custom, nested)
    if isinstance(inner.get("cells"), list):
        for cell in inner["cells"]:
            _layer(cell, result, custom, nested)
    if isinstance(inner.get("layers"), list):
        _functional(inner, result, custom)


def _lambda(inner: dict[str, Any]) -> None:
    """Keras 2's `[code, defaults, closure]` + `function_type` as Keras 3's
    `__lambda__` object; Keras's `safe_mode` still decides whether it runs."""
    for key in ("function", "output_shape"):
        kind = inner.pop(f"{key}_type" if key == "output_shape" else "function_type",
                         None)  # fmt: skip
        inner.pop("module" if key == "function" else "output_shape_module", None)
        value = inner.get(key)
        if kind == "lambda" and isinstance(value, list) and len(value) == 3:
            code, defaults, closure = value
            inner[key] = {
                "class_name": "__lambda__",
                "config": {"code": code, "defaults": defaults, "closure": closure},
            }
        elif key == "output_shape" and value is None:
            inner.pop(key, None)


def _module(entry: dict[str, Any], result: Translation) -> None:
    module = entry.get("module")
    if isinstance(module, str) and (
        module.startswith("tf_keras") or _keras_compat.is_keras2_engine_module(module)
    ):
        if entry["class_name"] in ("Functional", "Model"):
            entry["module"] = _keras_compat.FUNCTIONAL_MODULE
            entry["class_name"] = "Functional"
        elif entry["class_name"] in TF_OP_LAYERS:
            entry["module"] = None
            entry["registered_name"] = entry["class_name"]
            return
        else:
            entry["module"] = "keras.layers"
        result.note(f"module {module!r} -> Keras 3's")
    if entry.get("registered_name") == "Functional":
        entry["registered_name"] = None


def _resolve_class(entry: dict[str, Any], result: Translation, custom: dict) -> str:
    """The class a Keras 2 entry names, resolved to a name Keras 3 finds.

    A bare name that is not Keras's becomes the registered name of the one
    class registered under it; the library's own classes yield to a user's.
    """
    class_name = entry["class_name"]
    registered = entry.get("registered_name")
    name = registered if isinstance(registered, str) else class_name
    if name in TF_OP_LAYERS or name == "Lambda":
        return name
    if ">" in name:
        if name in custom or _registry.is_registered_name(name):
            return name.rsplit(">", 1)[-1] if _registry.is_keras_class(name) else name
        bare = name.rsplit(">", 1)[-1]
        if name.startswith("Custom>") and _registry.is_keras_class(bare):
            entry["class_name"] = bare
            entry["registered_name"] = None
            result.note(f"{name!r} -> Keras 3's {bare}")
            return bare
        result.missing.append(name)
        return name
    if _registry.is_keras_class(name) or name in custom:
        return name
    found = _registry.single_registered(name)
    if found is not None:
        entry["class_name"] = found
        if "registered_name" in entry:
            entry["registered_name"] = found
        result.renamed[name] = found
        result.note(f"bare name {name!r} -> registered {found!r}")
        return found
    if name not in result.missing:
        result.missing.append(name)
    return name


def _functional(inner: dict[str, Any], result: Translation, custom: dict) -> None:
    """A Functional or Sequential config: its layers, then their nodes."""
    layers = inner["layers"]
    models = set()
    for layer in layers:
        _layer(layer, result, custom, set())
        if isinstance(layer, dict) and isinstance(
            layer.get("config", {}).get("layers"), list
        ):
            models.add(layer.get("name") or layer["config"].get("name"))
    names = {
        layer.get("name") or layer.get("config", {}).get("name")
        for layer in layers
        if isinstance(layer, dict)
    }
    for layer in layers:
        if isinstance(layer, dict) and isinstance(layer.get("inbound_nodes"), list):
            layer["inbound_nodes"] = [
                _node(node, names, models, result) for node in layer["inbound_nodes"]
            ]
    for key in ("input_layers", "output_layers"):
        refs = inner.get(key)
        if isinstance(refs, list):
            refs = _shift_refs(refs, models, result)
            if len(refs) == 1 and isinstance(refs[0], list):
                # Keras 2 lists a single input (output) too, and takes (and
                # returns) it bare; in Keras 3 a list means "pass a list".
                refs = refs[0]
            inner[key] = refs


def _node(node: Any, names: set, models: set, result: Translation) -> Any:
    """A Keras 2 node: shifted nested-model indices, tensors in kwargs made
    Keras 3 tensor references (MultiHeadAttention's `value`), masks dropped."""
    if not isinstance(node, list) or not node:
        return node
    if isinstance(node[0], str):  # one inbound tensor, not wrapped (TF ops)
        node = [node]
    inputs = []
    kwargs: dict[str, Any] = {}
    tensor_kwargs = False
    for item in node:
        if not (isinstance(item, list) and len(item) >= 3):
            return node
        ref = _shift_ref(item[:3], models, result)
        inputs.append(ref)
        extra = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
        for key, value in extra.items():
            if key == "mask":
                result.note("dropped recorded masks (Keras 3 propagates them)")
                continue
            if _is_ref(value, names):
                tensor_kwargs = True
                kwargs[key] = _tensor(_shift_ref(value, models, result))
            else:
                kwargs[key] = value
    if not tensor_kwargs:
        return [[*ref, kwargs] for ref in inputs]
    result.note("call arguments holding tensors -> Keras 3 tensor references")
    args = [_tensor(ref) for ref in inputs]
    return {"args": [args[0] if len(args) == 1 else args], "kwargs": kwargs}


def _is_ref(value: Any, names: set) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and value[0] in names
        and all(isinstance(v, int) for v in value[1:])
    )


def _tensor(ref: list[Any]) -> dict[str, Any]:
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [], "dtype": "float32", "keras_history": list(ref)},
    }


def _shift_ref(ref: list[Any], models: set, result: Translation) -> list[Any]:
    """Keras 2 gives a model a node of its own when it is built, so calls of a
    nested model are its nodes 1, 2...; in Keras 3 they are 0, 1..."""
    name, index, tensor = ref[0], ref[1], ref[2]
    if name in models and isinstance(index, int) and index > 0:
        result.note("node indices of nested models shifted by one")
        return [name, index - 1, tensor]
    return [name, index, tensor]


def _shift_refs(refs: list[Any], models: set, result: Translation) -> list[Any]:
    if len(refs) == 3 and isinstance(refs[0], str):
        return _shift_ref(refs, models, result)
    return [_shift_refs(ref, models, result) if isinstance(ref, list) else ref
            for ref in refs]  # fmt: skip


# ---------------------------------------------------------------------------
# Training configuration
# ---------------------------------------------------------------------------


def _training(
    config: dict[str, Any], fmt: str, result: Translation, custom: dict
) -> dict[str, Any]:
    """A Keras 2 training config (`.h5`) or compile config (`.keras`), as the
    legacy `.h5` training config Keras 3 compiles from."""
    config = copy.deepcopy(config)
    optimizer = config.get("optimizer_config", config.get("optimizer"))
    out: dict[str, Any] = {
        "optimizer_config": _optimizer(optimizer, result, custom),
        "loss": _losses(config.get("loss"), result, custom),
        "metrics": _metrics(config.get("metrics"), result, custom, fmt),
        "weighted_metrics": _metrics(
            config.get("weighted_metrics"), result, custom, fmt
        ),
        "loss_weights": config.get("loss_weights"),
    }
    for key in ("steps_per_execution", "jit_compile", "run_eagerly"):
        if key in config and config[key] is None:
            result.note(f"compile: `{key}: None` -> Keras 3's default")
    return out


def _optimizer(config: Any, result: Translation, custom: dict) -> Any:
    if isinstance(config, str):  # compile(optimizer="adam"): its defaults
        config = {"class_name": keras.optimizers.get(config).__class__.__name__,
                  "config": {}}  # fmt: skip
    if not isinstance(config, dict):
        return config
    class_name = str(config.get("class_name"))
    inner = dict(config.get("config") or {})
    if class_name.startswith("Custom>"):
        result.note(f"optimizer {class_name!r} -> Keras 3's {class_name[7:]}")
        class_name = class_name[7:]
    if class_name in ("LossScaleOptimizerV3", "LossScaleOptimizer"):
        result.note("LossScaleOptimizerV3 -> Keras 3's LossScaleOptimizer")
        if inner.pop("dynamic", True) is False:
            result.note("a fixed loss scale becomes Keras 3's dynamic one")
        inner["inner_optimizer"] = _optimizer(
            inner.get("inner_optimizer"), result, custom
        )
        return {"module": "keras.optimizers", "class_name": "LossScaleOptimizer",
                "config": inner, "registered_name": None}  # fmt: skip
    for key in ("jit_compile", "is_legacy_optimizer"):
        if key in inner:
            inner.pop(key)
            result.note(f"optimizer: dropped `{key}`")
    rate = inner.get("learning_rate")
    if isinstance(rate, dict):
        inner["learning_rate"] = _schedule(rate, result)
    if ">" in class_name and not (
        class_name in custom or _registry.is_registered_name(class_name)
    ):
        result.missing.append(class_name)
    if ">" not in class_name:
        return {"module": "keras.optimizers", "class_name": class_name,
                "config": inner, "registered_name": None}  # fmt: skip
    return {"class_name": class_name, "config": inner}


def _schedule(config: dict[str, Any], result: Translation) -> dict[str, Any]:
    config = dict(config)
    inner = dict(config.get("config") or {})
    if "name" in inner and inner["name"] is None:
        inner["name"] = config.get("class_name")
        result.note("learning-rate schedule: `name: None` -> its class name")
    config["config"] = inner
    return config


def _losses(config: Any, result: Translation, custom: dict) -> Any:
    if config is None or isinstance(config, str):
        return _function_name(config, result, custom) if config else config
    if isinstance(config, list):
        return [_losses(item, result, custom) for item in config]
    if not isinstance(config, dict):
        return config
    if "class_name" not in config:
        return {key: _losses(value, result, custom) for key, value in config.items()}
    if config["class_name"] == "function":  # a .keras function reference
        return _function_name(config.get("config"), result, custom)
    class_name = config["class_name"]
    inner = dict(config.get("config") or {})
    if "fn" in inner:
        inner.pop("fn")
        result.note(f"loss {class_name}: dropped `fn`")
    if inner.get("reduction") == "auto":
        inner["reduction"] = "sum_over_batch_size"
        result.note('loss reduction "auto" -> "sum_over_batch_size"')
    if class_name == "LossFunctionWrapper":
        return inner.get("name")
    if not _registry.is_keras_class(class_name) and class_name not in custom:
        found = _registry.single_registered(class_name)
        if found is None and not _registry.is_registered_name(class_name):
            result.missing.append(class_name)
        class_name = found or class_name
    return {"class_name": class_name, "config": inner}


def _function_name(name: Any, result: Translation, custom: dict) -> Any:
    """A loss or metric named by a string: Keras's, or a registered function."""
    if not isinstance(name, str) or name in custom:
        return name
    if ">" in name:
        if not _registry.is_registered_name(name):
            result.missing.append(name)
        return name
    if _keras_function(name):
        return name
    found = _registry.single_registered(name)
    if found is not None:
        result.renamed[name] = found
        result.note(f"bare name {name!r} -> registered {found!r}")
        return found
    result.missing.append(name)
    return name


def _keras_function(name: str) -> bool:
    try:
        keras.losses.get(name)
        return True
    except Exception:
        pass
    try:
        keras.metrics.get(name)
        return True
    except Exception:
        return False


def _metrics(config: Any, result: Translation, custom: dict, fmt: str) -> Any:
    if config is None:
        return None
    if isinstance(config, dict) and "class_name" not in config:
        return {
            key: _metrics(value, result, custom, fmt) for key, value in config.items()
        }
    if isinstance(config, list):
        items = [_metrics(item, result, custom, fmt) for item in config]
        # Keras 2 `.h5` nests a single output's metrics in a list of lists.
        if fmt == "h5" and len(items) == 1 and isinstance(items[0], list):
            return items[0]
        return items
    if isinstance(config, str):
        return _function_name(config, result, custom)
    if not isinstance(config, dict):
        return config
    if config.get("class_name") == "function":
        return _function_name(config.get("config"), result, custom)
    class_name = config.get("class_name")
    inner = dict(config.get("config") or {})
    if class_name == "MeanMetricWrapper":
        result.note("MeanMetricWrapper{fn} -> the metric's name")
        name, fn = inner.get("name"), inner.get("fn")
        if isinstance(name, str) and _keras_function(name):
            return name
        return _function_name(fn, result, custom)
    inner.pop("fn", None)
    if isinstance(class_name, str) and not _registry.is_keras_class(class_name):
        if class_name not in custom and not _registry.is_registered_name(class_name):
            found = _registry.single_registered(class_name)
            if found is None:
                result.missing.append(class_name)
            class_name = found or class_name
    return {"class_name": class_name, "config": inner}


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------


def prepare(
    contents: Any, custom_objects: dict[str, Any] | None, safe_mode: bool
) -> Translation:
    """Translate a Keras 2 file's configs, then refuse what cannot load."""
    result = translate(contents, custom_objects)
    check(contents.path, result, custom_objects or {}, safe_mode)
    return result


def check(path: Path, result: Translation, custom: dict, safe_mode: bool) -> None:
    """Raise the one clear error for what cannot load: missing classes (all
    of them), Keras 2's TF-op layers off TensorFlow, Lambda bytecode."""
    if result.missing:
        missing = list(dict.fromkeys(result.missing))
        lines = [
            f"Cannot load {str(path)!r}: expected every custom class and function "
            "this Keras 2 file names to be available in Keras 3. Received: "
            f"{len(missing)} that are not:"
        ]
        lines.extend(f"  - {name!r}" for name in missing)
        entries = ", ".join(f"{name.rsplit('>', 1)[-1]!r}: ..." for name in missing)
        lines.append(
            "Fix: port each to Keras 3 and register it under the same name "
            "(@serializable.register_keras_serializable(package=...)), or pass "
            f"custom_objects={{{entries}}}. See {DOCS}#port-your-custom-layers"
        )
        from ._inspect import ClassRef

        refs = [
            ClassRef(name, name.rsplit(">", 1)[-1], None, False) for name in missing
        ]
        raise MissingClassError("\n".join(lines), refs)
    if result.tf_ops:
        from . import _backends

        unsupported = [op for op in result.tf_ops if not _backends.keras2_tf_op(op)]
        if unsupported:
            op = unsupported[0]
            replacement = _OP_REPLACEMENTS.get(
                op, "the keras.ops function of that name"
            )
            where = (
                "this backend"
                if _backends.is_tensorflow()
                else f"the {_backends.name()} backend"
            )
            message = (
                f"Cannot load {str(path)!r}: expected Keras layers only. Received: "
                f"raw TensorFlow calls recorded by Keras 2 as layers "
                f"(TFOpLambda/SlicingOpLambda): tf.{', tf.'.join(unsupported)}, "
                f"which {where} cannot run. Fix: rebuild the model in Keras 3 with "
                f"`{replacement}` in place of tf.{op} (and likewise for the others), "
                f"then copy the weights layer by layer. See {DOCS}#tf-op-layers"
            )
            raise ModelFileError(message)
    if result.lambdas and safe_mode:
        message = (
            f"Cannot load {str(path)!r}: expected no Python bytecode. Received: "
            f"Lambda layer(s) {', '.join(result.lambdas)}, whose function Keras 2 "
            "stored as bytecode; running it could execute arbitrary code. Fix: if "
            "you trust the file, load it with safe_mode=False (bytecode only runs "
            "on the Python version that wrote it), or replace the Lambda with a "
            f"registered layer. See {DOCS}#lambda-layers"
        )
        raise ModelFileError(message)


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load(path: Path, contents: Any, handle: Any, options: LoadOptions) -> keras.Model:
    """Load a Keras 2 file whose configs `translate` already rewrote."""
    from . import _backends

    objects = {
        **_backends.keras2_objects(contents.model_config),
        **(options.custom_objects or {}),
    }
    training = contents.compile_config
    if contents.format == "h5":
        from . import _h5

        contents.compile_config = None  # compiled here, with the slots mapped
        plain = replace(options, compile=False, custom_objects=objects)
        model = _h5.load_open(handle, contents, plain)
        contents.compile_config = training
        _finalize(model)
        state = _h5_optimizer_state(handle) if options.optimizer_state else None
    else:
        model = _load_keras(path, contents, objects, options.safe_mode)
        state = _keras_optimizer_state(path) if options.optimizer_state else None
    if options.compile and training and training.get("optimizer_config") is not None:
        compiled = _compile(model, training, objects)
        if compiled and state is not None and state[0]:
            _restore_optimizer(model, training["optimizer_config"], state, path)
    return model


def _finalize(model: keras.Model) -> None:
    """What Keras's own weight loading does after assigning: layers such as
    `Normalization` derive tensors from their variables (`finalize_state`)."""
    for layer in _all_layers(model):
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize) and layer.built:
            finalize()


def _load_keras(
    path: Path, contents: Any, objects: dict, safe_mode: bool
) -> keras.Model:
    """Keras 3's own loader, on a copy of the archive with the new config."""
    with tempfile.TemporaryDirectory(prefix="serializable-keras2-") as directory:
        copy_path = Path(directory) / "model.keras"
        with zipfile.ZipFile(path) as source, zipfile.ZipFile(copy_path, "w") as out:
            for info in source.infolist():
                if info.filename == "config.json":
                    out.writestr("config.json", json.dumps(contents.model_config))
                elif info.filename in ("metadata.json", "model.weights.h5"):
                    with source.open(info) as src, out.open(info.filename, "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        return keras.saving.load_model(
            copy_path, custom_objects=objects, compile=False, safe_mode=safe_mode
        )


def _compile(model: keras.Model, training: dict[str, Any], objects: dict) -> bool:
    registered = _registry.custom_objects()

    def named(item: Any) -> Any:
        # A registered loss or metric function named by a string: Keras's
        # `losses.get` looks strings up among its own only.
        if isinstance(item, str):
            return objects.get(item) or (registered.get(item) if ">" in item else item)
        if isinstance(item, list):
            return [named(value) for value in item]
        if isinstance(item, dict) and "class_name" not in item:
            return {key: named(value) for key, value in item.items()}
        return item

    training = copy.deepcopy(training)  # Keras edits configs it deserializes
    for key in ("loss", "metrics", "weighted_metrics"):
        training[key] = named(training.get(key))
    return compile_from_training(model, training, objects)


def _h5_optimizer_state(handle: Any) -> tuple[list[str], list[np.ndarray]] | None:
    if "optimizer_weights" not in handle:
        return None
    group = handle["optimizer_weights"]
    names = _h5_names(group, "weight_names")
    return names, [np.asarray(group[name]) for name in names]


def _keras_optimizer_state(path: Path) -> tuple[list[str], list[np.ndarray]] | None:
    import io

    import h5py

    with zipfile.ZipFile(path) as archive:
        if "model.weights.h5" not in archive.namelist():
            return None
        data = archive.read("model.weights.h5")
    with h5py.File(io.BytesIO(data), "r") as weights:
        if "optimizer/vars" not in weights:
            return None
        group = weights["optimizer/vars"]
        count = len(group)
        return [""] * count, [np.asarray(group[str(i)]) for i in range(count)]


def _restore_optimizer(
    model: keras.Model,
    config: dict[str, Any],
    state: tuple[list[str], list[np.ndarray]],
    path: Path,
) -> None:
    """Keras 2's optimizer slots into Keras 3's, by role and variable order."""
    names, values = state
    optimizer = model.optimizer
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    inner_config = config
    if config.get("class_name") == "LossScaleOptimizer":
        inner_config = config["config"]["inner_optimizer"]
    class_name = inner_config.get("class_name")
    roles = _ROLES.get(str(class_name))
    variables = model.trainable_variables
    if roles is None:
        _warn(model, f"optimizer {class_name} has no known Keras 2 slot layout")
        return
    optimizer.build(variables)
    iterations, slots = values[0], values[1:]
    if not slots:  # saved before any training step: only the count
        inner.iterations.assign(int(np.asarray(iterations)))
        return
    expected = _keras2_roles(str(class_name), inner_config.get("config", {}), roles)
    labels: list[str | None]
    if names and names[0]:
        labels = [_role(name, roles) for name in names[1:]]
    else:
        labels = list(_layout(str(class_name), expected, variables))
    if len(labels) != len(slots) or any(label is None for label in labels):
        _warn(model, f"{len(slots)} saved slots do not match {class_name}'s layout")
        return
    per_role: dict[str, list[np.ndarray]] = {}
    for label, value in zip(labels, slots, strict=True):
        per_role.setdefault(str(label), []).append(value)
    assignments: list[tuple[Any, np.ndarray]] = []
    for role, values_of_role in per_role.items():
        slots = _keras_compat.optimizer_slots(inner, roles[role])
        targets = _slot_targets(str(class_name), role, slots, variables)
        if not targets and class_name == "SGD":
            continue  # Keras 2 makes momentum slots even without momentum
        if len(targets) != len(values_of_role) or any(
            tuple(t.shape) != v.shape
            for t, v in zip(targets, values_of_role, strict=False)
        ):
            _warn(model, f"the {role!r} slots do not match the model's variables")
            return
        assignments.extend(zip(targets, values_of_role, strict=True))
    for target, value in assignments:
        target.assign(value)
    inner.iterations.assign(int(np.asarray(iterations)))
    if class_name == "Nadam":
        _keras_compat.nadam_momentum_product(inner).assign(
            _nadam_u_product(
                inner_config.get("config", {}), int(np.asarray(iterations))
            )
        )
    if optimizer is not inner:
        optimizer.iterations.assign(int(np.asarray(iterations)))


def _nadam_u_product(config: dict[str, Any], iterations: int) -> np.float32:
    """Keras 2 keeps Nadam's running product out of its saved variables; it is
    the product of the momentum schedule over the steps taken."""
    beta_1 = np.float32(config.get("beta_1", 0.9))
    product = np.float32(1.0)
    for step in range(1, iterations + 1):
        u_t = beta_1 * (
            np.float32(1.0) - np.float32(0.5) * np.float32(0.96) ** np.float32(step)
        )
        product = np.float32(product * u_t)
    return product


def _keras2_roles(
    class_name: str, config: dict[str, Any], roles: dict[str, str]
) -> list[tuple[str, ...]]:
    """The blocks of slot roles Keras 2's `build` creates, in order."""
    if class_name in ("Adam", "AdamW"):
        return [("m", "v")] + ([("vhat",)] if config.get("amsgrad") else [])
    if class_name == "SGD":
        return [("m",)]
    if class_name == "RMSprop":
        blocks: list[tuple[str, ...]] = [("velocity",)]
        if config.get("momentum", 0) > 0:
            blocks.append(("momentum",))
        if config.get("centered"):
            blocks.append(("average_gradient",))
        return blocks
    if class_name == "Nadam":
        return [("m", "v")]
    if class_name == "Adagrad":
        return [("accumulator",)]
    if class_name == "Adamax":
        return [("m", "u")]
    if class_name == "Adadelta":
        return [("accumulated_grad", "accumulated_delta_var")]
    if class_name == "Ftrl":
        return [("accumulator", "linear")]
    if class_name == "Lion":
        return [("m",)]
    return []


def _layout(
    class_name: str, blocks: list[tuple[str, ...]], variables: list[Any]
) -> list[str]:
    """The role of each saved slot, in Keras 2's order (files without names)."""
    if class_name == "Adafactor":
        # Factored row/column statistics for variables of rank 2 and more
        # only, then the velocity: r, c, v per kernel; v alone per bias.
        return [
            role
            for variable in variables
            for role in (("r", "c", "v") if len(variable.shape) >= 2 else ("v",))
        ]
    return [role for block in blocks for _ in variables for role in block]


def _slot_targets(
    class_name: str, role: str, slots: list[Any], variables: list[Any]
) -> list[Any]:
    """Keras 3's slot variables for `role`, one per saved Keras 2 slot.

    Keras 3's Adafactor keeps a scalar placeholder as the row and column
    statistics of a variable of rank below 2, which Keras 2 does not save."""
    if class_name == "Adafactor" and role in ("r", "c"):
        slots = [s for s, v in zip(slots, variables, strict=True) if len(v.shape) >= 2]
    return [v for v in slots if v is not None]


def _role(name: str, roles: dict[str, str]) -> str | None:
    """`Adam/m/dense/kernel:0` -> "m" (also without the optimizer prefix)."""
    parts = name.split("/")
    for part in parts[:2]:
        if part in roles:
            return part
    return None


def _warn(model: keras.Model, why: str) -> None:
    import warnings

    warnings.warn(
        f"Optimizer state of Keras 2 model '{model.name}' was not restored: {why}. "
        "Training restarts with fresh optimizer slots (hyperparameters are kept).",
        stacklevel=4,
    )


# ---------------------------------------------------------------------------
# Descriptions for `serializable inspect`
# ---------------------------------------------------------------------------


def describe(contents: Any) -> tuple[dict[str, Any], Any]:
    """What loading this Keras 2 file will translate and needs, without
    running anything, and a translated copy of its metadata."""
    probe = copy.copy(contents)
    result = translate(probe)
    report = {
        "written_by": f"Keras {contents.keras_version}",
        "classes": sorted(
            _configwalk.class_names(contents.model_config, with_config=True)
        ),
        "translations": result.changes,
        "missing": list(dict.fromkeys(result.missing)),
        "tf_ops": result.tf_ops,
        "lambda_layers": result.lambdas,
    }
    return report, probe


def render(report: dict[str, Any]) -> list[str]:
    """The Keras 2 section of `serializable inspect`'s text."""
    lines = [
        f"Keras 2 file ({report['written_by']}): load_model translates it for Keras 3.",
        f"  classes it uses: {', '.join(report['classes'])}",
    ]
    if report["translations"]:
        lines.append("  translated on load (configs only, weights untouched):")
        lines.extend(f"    - {change}" for change in report["translations"])
    if report["missing"]:
        lines.append(
            "  missing here (port and register each, or pass custom_objects): "
            + ", ".join(report["missing"])
        )
    if report["tf_ops"]:
        lines.append(
            "  raw TensorFlow calls (TFOpLambda): tf."
            + ", tf.".join(report["tf_ops"])
            + " (loadable on the TensorFlow backend only)"
        )
    if report["lambda_layers"]:
        lines.append(
            "  Lambda bytecode in: "
            + ", ".join(report["lambda_layers"])
            + " (refused unless safe_mode=False)"
        )
    return lines


def _all_layers(model: Any) -> list[Any]:
    """Every layer nested in `model`."""
    return _keras_compat.flatten_layers(model)


def _h5_names(group: Any, name: str) -> list[str]:
    """A list of names Keras stores in an HDF5 attribute, split over
    `name0`, `name1`... when it is too large for one attribute."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]
