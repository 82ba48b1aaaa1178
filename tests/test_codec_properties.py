"""Properties of the value codec: snapshot, encode, JSON and decode give back the same value.

"The same" is type-strict: tuples stay tuples, lists stay lists, dict keys keep
their types, numpy arrays and scalars keep their dtype, shape and values (NaN
where there was NaN, -0.0 where there was -0.0), Enum members are the same
objects.
"""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from serializable import register_keras_serializable
from serializable._codec import TAG, Where, decode, encode, snapshot

SETTINGS = settings(max_examples=200, deadline=None)


@register_keras_serializable(package="test_codec_properties")
class Colour(enum.Enum):
    RED = "red"
    GREEN = 2
    BLUE = (3, "blue")
    CRIMSON = "red"  # an alias: Colour.CRIMSON is Colour.RED


@register_keras_serializable(package="test_codec_properties")
class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@register_keras_serializable(package="test_codec_properties")
class Shade(str, enum.Enum):
    DARK = "dark"
    LIGHT = "light"


@register_keras_serializable(package="test_codec_properties")
class Access(enum.Flag):
    READ = 1
    WRITE = 2


WHERE = Where("T", "x")

# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

ints = st.integers(min_value=-(2**62), max_value=2**62)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, st.text(max_size=20))

ARRAY_DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="="),
    hnp.unsigned_integer_dtypes(endianness="="),
    hnp.floating_dtypes(endianness="=", sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(endianness="=", sizes=(64,)),
    hnp.unicode_string_dtypes(endianness="=", max_len=6),
    hnp.byte_string_dtypes(endianness="=", max_len=6),
)

# Up to 300 elements, so both the nested-list form (<= 256) and base64 appear.
arrays = hnp.arrays(
    dtype=ARRAY_DTYPES,
    shape=st.one_of(
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
        st.sampled_from([(257,), (300,), (2, 150), (16, 17), (3, 10, 10)]),
    ),
)
numpy_scalars = arrays.filter(lambda a: a.size > 0).map(lambda a: a.flat[0])

enum_members = st.sampled_from([*Colour, *Priority, *Shade, Access.READ, Access.WRITE])

leaves = st.one_of(scalars, arrays, numpy_scalars, enum_members)

# Hashable keys for tagged dicts: everything a key can be that the codec holds.
keys = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        ints,
        st.floats(allow_nan=False),
        st.text(max_size=10),
        enum_members,
        numpy_scalars.filter(lambda s: not (s.dtype.kind in "fc" and np.isnan(s))),
    ),
    lambda children: st.lists(children, max_size=3).map(tuple),
    max_leaves=5,
)
str_keys = st.one_of(st.just(TAG), st.text(max_size=10))


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(str_keys, children, max_size=4),
        st.dictionaries(ints, children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
    )


values = st.recursive(leaves, containers, max_leaves=12)


# ---------------------------------------------------------------------------
# Type-strict comparison
# ---------------------------------------------------------------------------


def same_floats(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal, with NaN where the other has NaN and -0.0 where it has -0.0."""
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return False
    return bool(
        np.array_equal(a[~nan], b[~nan])
        and np.array_equal(np.signbit(a[~nan]), np.signbit(b[~nan]))
    )


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return same_floats(a, b)
    if a.dtype.kind == "c":
        return same_floats(a.real, b.real) and same_floats(a.imag, b.imag)
    return bool(np.array_equal(a, b))


def assert_same(got: Any, want: Any, path: str = "value") -> None:
    """Fail unless `got` is `want` rebuilt: same types all the way down, same data."""
    assert type(got) is type(want), f"{path}: {type(got)} is not {type(want)}"
    if isinstance(want, enum.Enum):
        assert got is want, f"{path}: {got!r} is not {want!r}"
    elif isinstance(want, np.ndarray):
        assert same_array(got, want), f"{path}: {got!r} != {want!r}"
    elif isinstance(want, np.generic):
        assert same_array(np.asarray(got), np.asarray(want)), f"{path}: {got!r}"
    elif isinstance(want, float):
        if math.isnan(want):
            assert math.isnan(got), f"{path}: {got!r} is not NaN"
        else:
            assert got == want, f"{path}: {got!r} != {want!r}"
            assert math.copysign(1, got) == math.copysign(1, want), path
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, dict):
        assert len(got) == len(want), f"{path}: {len(got)} keys != {len(want)}"
        for (gk, gv), (wk, wv) in zip(got.items(), want.items(), strict=True):
            assert_same(gk, wk, f"{path} key {wk!r}")
            assert_same(gv, wv, f"{path}[{wk!r}]")
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def through_json(value: Any) -> Any:
    """Snapshot, encode, write as JSON text, read back, decode: what a file does."""
    encoded = encode(snapshot(value, WHERE), WHERE)
    return decode(json.loads(json.dumps(encoded, allow_nan=True)))


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------


class TestRoundTrip:
    @SETTINGS
    @given(values)
    def test_json_round_trip_is_the_identity(self, value):
        """Any supported value comes back from JSON as the same value, type for type."""
        assert_same(through_json(value), value)

    @SETTINGS
    @given(arrays)
    def test_arrays_keep_dtype_shape_and_values(self, array):
        """Arrays of every supported dtype and size, in list or base64 form, are exact."""
        encoded = encode(snapshot(array, WHERE), WHERE)
        form = "data" if "data" in encoded else "base64"
        if array.dtype.kind in "biufU" and array.size <= 256:
            assert form == "data"
        else:
            assert form == "base64"
        assert_same(through_json(array), array)

    @SETTINGS
    @given(numpy_scalars)
    def test_numpy_scalars_keep_their_dtype(self, scalar):
        """A numpy scalar comes back as a numpy scalar of the same dtype, not a Python number."""
        assert_same(through_json(scalar), scalar)

    @SETTINGS
    @given(st.dictionaries(st.one_of(str_keys, keys), values, max_size=5))
    def test_dict_keys_keep_their_types(self, value):
        """Int, tuple, Enum and numpy keys, and the reserved tag as a user key, survive."""
        assert_same(through_json(value), value)

    @SETTINGS
    @given(enum_members)
    def test_enum_members_are_the_same_objects(self, member):
        """An Enum member decodes to the very same member object."""
        assert through_json(member) is member

    @pytest.mark.parametrize(
        "member", [Access.READ | Access.WRITE, Access(0)], ids=["combined", "empty"]
    )
    def test_flag_combinations(self, member):
        """A combination of Flag members comes back as the same value."""
        assert through_json(member) is member


class TestSnapshotCopies:
    @SETTINGS
    @given(values)
    def test_snapshot_equals_the_original(self, value):
        """snapshot returns an equal value of the same types."""
        assert_same(snapshot(value, WHERE), value)

    @SETTINGS
    @given(values)
    def test_mutating_the_original_does_not_change_the_encoding(self, value):
        """Lists, dicts and arrays are copied: changing them later changes nothing saved."""
        captured = snapshot(value, WHERE)
        before = json.dumps(encode(captured, WHERE), allow_nan=True)
        mutate(value)
        after = json.dumps(encode(captured, WHERE), allow_nan=True)
        assert after == before


def mutate(value: Any) -> None:
    """Change every mutable container and array inside `value`, in place."""
    if isinstance(value, (list, tuple)):
        for item in value:
            mutate(item)
        if isinstance(value, list):
            value.append("mutated")
            if len(value) > 1:
                value[0] = "replaced"
    elif isinstance(value, dict):
        for item in value.values():
            mutate(item)
        for key in list(value):
            value[key] = "replaced"
        value["mutated-key"] = "mutated"
    elif isinstance(value, np.ndarray) and value.size:
        if value.dtype.kind == "b":
            np.logical_not(value, out=value)
        elif value.dtype.kind in "US":
            value[...] = "z"
        else:
            value[...] = value + 1 if value.dtype.kind in "iu" else np.nan


class TestEncodingIsPlainJson:
    @SETTINGS
    @given(values)
    def test_encoding_holds_only_json_types(self, value):
        """encode returns only dicts with str keys, lists, str, int, float, bool and None."""
        encoded = encode(snapshot(value, WHERE), WHERE)
        assert_plain(encoded)
        text = json.dumps(encoded, allow_nan=True)
        assert_same(json.loads(text), encoded)


def assert_plain(value: Any, path: str = "encoded") -> None:
    if isinstance(value, dict):
        assert type(value) is dict, path
        for key, item in value.items():
            assert type(key) is str, f"{path}: key {key!r}"
            assert_plain(item, f"{path}[{key!r}]")
    elif isinstance(value, list):
        assert type(value) is list, path
        for i, item in enumerate(value):
            assert_plain(item, f"{path}[{i}]")
    else:
        assert type(value) in (str, int, float, bool, type(None)), (
            f"{path}: {type(value)} is not a JSON type"
        )
