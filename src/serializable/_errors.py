"""The exceptions keras-serializable raises.

Each one subclasses the builtin it refines, so code that already catches
`TypeError` or `ValueError` around Keras calls keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence

# Where the documentation site lives. Messages link to a page (and anchor)
# there instead of citing internal ids. Page names are the file names under
# docs/ without ".md"; the anchors of the pitfall catalog (docs/pitfalls.md)
# are listed in PITFALL_ANCHORS.
DOCS_ROOT = "https://keras-serializable.github.io/keras-serializable"

# The known Keras failures the library removes, by the anchor of their section
# in docs/pitfalls.md. Code refers to them by anchor, never by number.
PITFALL_ANCHORS = (
    "constructor-arguments",
    "get-config-returns-objects",
    "child-built-twice",
    "tuples",
    "numpy-values",
    "subclassed-models-in-h5",
    "string-losses-in-h5",
    "built-in-loss-settings",
    "losses-metrics-schedules",
    "non-weight-state",
    "shared-layers-tied-weights",
    "mask-ops-in-h5",
    "mutated-arguments",
    "name-clashes",
    "optimizer-state-in-h5",
    "missing-kwargs",
    "mixed-precision-optimizer",
    "lambda-layers",
    "duplicate-weight-names",
    "registered-only-in-tests",
    "keras-2-files",
    "functional-subclass-arguments",
    "custom-compile-on-load",
)


def docs_url(page: str, anchor: str | None = None) -> str:
    """The documentation URL of `page` (a docs/ file name without `.md`)."""
    url = f"{DOCS_ROOT}/{page}/"
    return f"{url}#{anchor}" if anchor else url


__all__ = [
    "ConfigDecodeError",
    "ConfigVersionError",
    "FormatLimitError",
    "MissingClassError",
    "ModelFileError",
    "RegistrationError",
    "RoundtripError",
    "SerializableError",
    "UnknownConfigKeyError",
    "UnserializableArgumentError",
]


class SerializableError(Exception):
    """Base class of every error raised by keras-serializable."""


class UnserializableArgumentError(SerializableError, TypeError):
    """A constructor argument holds a value that cannot be written to a file.

    Raised when the object is created (or, at the latest, when it is saved),
    never at load time, so no file is ever written that would reload into a
    different object.
    """


class RegistrationError(SerializableError, ValueError):
    """A class or function cannot be registered under the name asked for."""


class UnknownConfigKeyError(SerializableError, TypeError):
    """A loaded config has a key that the class's `__init__` does not accept."""


class ConfigDecodeError(SerializableError, ValueError):
    """A saved config holds a value this code cannot rebuild.

    For example a tagged value from a newer keras-serializable, or an Enum
    whose module is not imported (files never import modules themselves).
    """


class ConfigVersionError(SerializableError, ValueError):
    """A config was saved with a config version this class cannot read."""


class ModelFileError(SerializableError, ValueError):
    """A path is not a readable model file: missing, empty, truncated, corrupted,
    a directory, a SavedModel, or a file of another format."""


class MissingClassError(SerializableError, ImportError):
    """A model file needs custom classes that are not registered in this process.

    `missing` lists every one of them (a `ClassRef` each: registered name,
    class name, the module it was saved from when known).
    """

    def __init__(self, message: str, missing: Sequence[object]) -> None:
        super().__init__(message)
        self.missing = list(missing)


class FormatLimitError(SerializableError, ValueError):
    """The model holds something the chosen file format cannot store.

    Raised at save time, before anything is written; the message says what and
    suggests the `.keras` format.
    """


class UsageError(SerializableError):
    """Input the `serializable` command cannot use (a module `--import` cannot
    import, an output path it may not write): it prints the message and exits
    with code 2. Raised by the command only, never by the library."""


class RoundtripError(AssertionError):
    """A saved and reloaded object differs from the original.

    An `AssertionError`, so pytest reports it like any failed assert. The
    message lists every problem found, grouped by format; `problems` holds
    them as a dict `{format: [message, ...]}`.
    """

    def __init__(self, message: str, problems: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.problems = problems


def innermost(err: BaseException) -> str:
    """The root cause of a chain: Keras wraps the missing class in generic text."""
    seen = set()
    while True:
        nxt = err.__cause__ or err.__context__
        if nxt is None or id(nxt) in seen:
            break
        seen.add(id(err))
        err = nxt
    text = str(err).split(" Full object config:")[0]
    return f"{type(err).__name__}: {text}"
