"""Checks that keep a file from a stranger harmless, decided before anything
large is read or allocated.

* `regular_file`: the path is a regular file (not a FIFO, a device or a
  socket), checked with `stat`, before it is opened.
* `loads`: JSON with a size and a nesting-depth limit, so a hostile config
  cannot exhaust memory or recursion in the code that walks it.
* `zip_member` / `read_member`: archive members bounded by declared size and
  compression ratio before they are inflated.
* `h5_structure`: every object of an HDF5 file reached through hard links
  only, with no external or virtual storage and no dataset declaring far more
  data than the file stores (what Keras's own `.keras` reader refuses too:
  "Not allowed: H5 file with ExternalLink").
* `keras_integrity` / `h5_integrity`: the integrity records `save_model`
  writes, so that damage anywhere in a file it wrote is reported by name.

See docs/security.md for what these guarantee and what they do not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from . import _configwalk
from ._errors import ModelFileError

# JSON: configs of real models are a few MiB at most and nest a few dozen
# levels (a model in a model in a model is ~20); the limits leave ample room.
MAX_JSON_BYTES = 256 * 2**20
MAX_JSON_DEPTH = 100
# Archive members: Keras stores members uncompressed; deflate cannot exceed
# ~1032:1. A member inflating to more than this ratio above the floor is a bomb.
MAX_ZIP_RATIO = 100
ZIP_RATIO_FLOOR = 16 * 2**20
# HDF5 datasets: declared bytes against bytes stored (fill-value bombs).
MAX_H5_RATIO = 1000
H5_RATIO_FLOOR = 16 * 2**20
MAX_H5_OBJECTS = 200_000

INTEGRITY_KERAS = "serializable.integrity"
INTEGRITY_H5 = "serializable_integrity"
# In the manifest of files with an integrity record: a file that says so and
# has none lost it.
INTEGRITY_MARKER = "__integrity__"
INTEGRITY_VERSION = 1


def _bad(path: Path | str, detail: str, fix: str | None = None) -> ModelFileError:
    fix = fix or "Do not load this file; ask its author for a new copy."
    message = (
        f"Cannot read {str(path)!r}: expected a model file within safe limits. "
        f"Received: {detail}. {fix}"
    )
    return ModelFileError(message)


def damaged(path: Path | str, what: str, detail: str) -> ModelFileError:
    """The error for a file whose integrity data does not match its content."""
    message = (
        f"Cannot load {str(path)!r}: {what} is damaged: expected it to match the "
        f"integrity data save_model wrote. Received: {detail}. The file is "
        "corrupted or was edited; save or copy it again from a good source."
    )
    return ModelFileError(message)


# ---------------------------------------------------------------------------
# The path
# ---------------------------------------------------------------------------


def regular_file(path: Path) -> os.stat_result:
    """Refuse anything but a regular file, without opening it."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(info.st_mode)
            else "a socket"
            if stat.S_ISSOCK(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "not a regular file"
        )
        message = (
            f"Cannot load {str(path)!r}: expected a regular .keras or .h5 file. "
            f"Received: {kind}, which is never read as a model. Pass the path of "
            "a model file."
        )
        raise ModelFileError(message)
    return info


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


def loads(path: Path | str, data: bytes | str, what: str) -> Any:
    """`json.loads` within the size and depth limits; errors name the file."""
    if len(data) > MAX_JSON_BYTES:
        raise _bad(
            path, f"{what} of {len(data):,} bytes (the limit is {MAX_JSON_BYTES:,})"
        )
    try:
        value = json.loads(data)
    except RecursionError as err:
        raise _bad(path, f"{what} nested deeper than {MAX_JSON_DEPTH} levels") from err
    except (ValueError, UnicodeDecodeError) as err:
        message = (
            f"Cannot read {str(path)!r}: expected {what} to be valid JSON. "
            f"Received: {type(err).__name__}: {err}. The file is truncated or "
            "corrupted; save or copy it again."
        )
        raise ModelFileError(message) from err
    check_depth(path, value, what)
    return value


def check_depth(path: Path | str, value: Any, what: str) -> None:
    """Refuse JSON nested deeper than MAX_JSON_DEPTH (walked without recursion)."""
    for item, depth in _configwalk.walk_depths(value):
        if depth > MAX_JSON_DEPTH and isinstance(item, (dict, list)):
            raise _bad(path, f"{what} nested deeper than {MAX_JSON_DEPTH} levels")


# ---------------------------------------------------------------------------
# Zip archives
# ---------------------------------------------------------------------------


def zip_member(
    path: Path | str, info: zipfile.ZipInfo, limit: int | None = None
) -> None:
    """Refuse a member whose declared size is a bomb or beyond `limit`."""
    if limit is not None and info.file_size > limit:
        raise _bad(
            path,
            f"archive member {info.filename!r} of {info.file_size:,} bytes (the "
            f"limit for it is {limit:,})",
        )
    if info.file_size > ZIP_RATIO_FLOOR and info.file_size > MAX_ZIP_RATIO * max(
        info.compress_size, 1
    ):
        raise _bad(
            path,
            f"archive member {info.filename!r} declares {info.file_size:,} bytes "
            f"but stores {info.compress_size:,} (a decompression bomb)",
        )


def read_member(archive: zipfile.ZipFile, path: Path | str, name: str) -> bytes:
    """A JSON member, read only after its size and ratio were checked."""
    info = archive.getinfo(name)
    zip_member(path, info, MAX_JSON_BYTES)
    with archive.open(info) as member:
        # zipfile stops at the declared size, so this never reads more.
        return member.read(MAX_JSON_BYTES + 1)


def check_all_members(archive: zipfile.ZipFile, path: Path | str) -> None:
    """Every member within the limits, named once, inside the archive."""
    seen: set[str] = set()
    for info in archive.infolist():
        name = info.filename
        if name in seen:
            raise _bad(path, f"an archive holding member {name!r} twice")
        seen.add(name)
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise _bad(path, f"an archive member named {name!r}, outside the archive")
        if info.flag_bits & 0x1:
            raise _bad(path, f"an encrypted archive member {name!r}")
        zip_member(path, info)


# ---------------------------------------------------------------------------
# HDF5
# ---------------------------------------------------------------------------


def h5_structure(handle: Any, path: Path | str, where: str = "") -> None:
    """Refuse links other than hard links, external or virtual storage and
    shape bombs anywhere in an HDF5 file, reading no data."""
    import h5py

    seen: set[Any] = set()
    stack: list[Any] = [handle]
    count = 0
    while stack:
        group = stack.pop()
        for name in group:
            count += 1
            if count > MAX_H5_OBJECTS:
                raise _bad(
                    path,
                    f"an HDF5 file{where} with more than {MAX_H5_OBJECTS:,} objects",
                )
            link = group.get(name, getlink=True)
            full = f"{group.name.rstrip('/')}/{name}"
            if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
                kind = type(link).__name__
                target = (
                    f"{link.filename}:{link.path}"
                    if isinstance(link, h5py.ExternalLink)
                    else link.path
                )
                raise _refused(path, where, f"{full!r} is a {kind} to {target!r}")
            if not isinstance(link, h5py.HardLink):
                raise _refused(path, where, f"{full!r} is a link of an unknown kind")
            obj = group[name]
            key = (obj.id.fileno, h5py.h5o.get_info(obj.id).addr)
            if key in seen:
                if isinstance(obj, h5py.Group):
                    raise _refused(
                        path, where, f"{full!r} links back to a group already seen"
                    )
                continue
            seen.add(key)
            if isinstance(obj, h5py.Group):
                stack.append(obj)
            elif isinstance(obj, h5py.Dataset):
                _dataset(obj, full, path, where)


def _refused(path: Path | str, where: str, detail: str) -> ModelFileError:
    message = (
        f"Cannot read {str(path)!r}: expected every object of the HDF5 file{where} "
        f"to be stored in the file itself. Received: {detail}. Not allowed (Keras "
        "refuses such files too): a model file must never read another file. Do "
        "not load this file."
    )
    return ModelFileError(message)


def _dataset(dataset: Any, full: str, path: Path | str, where: str) -> None:
    if dataset.external:
        raise _refused(
            path,
            where,
            f"dataset {full!r} stored externally in {dataset.external[0][0]!r}",
        )
    if dataset.is_virtual:
        raise _refused(path, where, f"dataset {full!r} is a virtual dataset")
    dtype = dataset.dtype
    declared = math.prod(dataset.shape or ()) * dtype.itemsize
    stored = dataset.id.get_storage_size()
    if declared > H5_RATIO_FLOOR and declared > MAX_H5_RATIO * max(stored, 1):
        raise _bad(
            path,
            f"HDF5 dataset {full!r}{where} declares {declared:,} bytes but stores "
            f"{stored:,} (a shape bomb)",
        )


# ---------------------------------------------------------------------------
# Integrity records
# ---------------------------------------------------------------------------


def digest(value: Any) -> str:
    """sha256 of a JSON value in canonical form."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def keras_record(archive: zipfile.ZipFile, manifest: dict[str, Any]) -> dict[str, Any]:
    """The integrity record of a `.keras` archive: each member's size and
    CRC-32, and a digest of them and of the manifest."""
    members = {info.filename: [info.file_size, info.CRC] for info in archive.infolist()}
    return {
        "version": INTEGRITY_VERSION,
        "members": members,
        "sha256": digest([manifest, members]),
    }


def _no_record(path: Path | str, manifest: Any) -> None:
    """A file without an integrity record is fine unless its manifest says it
    has one (then the record was removed)."""
    if isinstance(manifest, dict) and INTEGRITY_MARKER in manifest:
        raise damaged(
            path,
            "the integrity record",
            "none, though the manifest says it has one",
        )


def keras_integrity(
    archive: zipfile.ZipFile,
    path: Path | str,
    comment: dict[str, Any],
    manifest_key: str,
    read_data: bool,
) -> None:
    """Check a `.keras` archive against its record; with `read_data`, read every
    member through (zipfile checks each CRC-32 at the end of the member)."""
    manifest = comment.get(manifest_key)
    record = comment.get(INTEGRITY_KERAS)
    if record is None:
        _no_record(path, manifest)
    elif not isinstance(record, dict) or not isinstance(record.get("members"), dict):
        raise damaged(
            path, "the integrity record", f"a {type(record).__name__} of the wrong form"
        )
    else:
        members = record["members"]
        if record.get("sha256") != digest([manifest, members]):
            raise damaged(
                path, "the manifest or the integrity record", "a different digest"
            )
        actual = {
            info.filename: [info.file_size, info.CRC] for info in archive.infolist()
        }
        for name in sorted(set(members) | set(actual)):
            if name not in actual:
                raise damaged(path, f"archive member {name!r}", "no such member")
            if name not in members:
                raise damaged(
                    path,
                    f"archive member {name!r}",
                    "a member save_model did not write",
                )
            if members[name] != actual[name]:
                raise damaged(
                    path,
                    f"archive member {name!r}",
                    f"size and CRC {actual[name]}, not {members[name]}",
                )
    if read_data:
        for info in archive.infolist():
            zip_member(path, info)
            try:
                with archive.open(info) as member:
                    while member.read(1 << 22):
                        pass
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as err:
                raise damaged(
                    path,
                    f"archive member {info.filename!r}",
                    f"{type(err).__name__}: {err}",
                ) from err


H5_SKIP_ATTRS = frozenset({INTEGRITY_H5})


def h5_metadata(handle: Any) -> list[Any]:
    """Every object's path, kind, shape and dtype and every attribute except
    the record itself, in a canonical order: what the record's digest covers."""
    import h5py

    entries: list[Any] = []

    def attrs(obj: Any) -> list[Any]:
        out = []
        for key in sorted(obj.attrs):
            if key in H5_SKIP_ATTRS:
                continue
            value = np.asarray(obj.attrs[key])
            if value.dtype.kind == "O":
                data = json.dumps([_plain(v) for v in value.reshape(-1)])
            else:
                data = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
            out.append([key, value.dtype.str, list(value.shape), data])
        return out

    entries.append(["/", "group", attrs(handle)])

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            entries.append(
                [name, "dataset", obj.dtype.str, list(obj.shape), attrs(obj)]
            )
        else:
            entries.append([name, "group", attrs(obj)])

    handle.visititems(visit)
    return entries


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return (
        value
        if isinstance(value, (str, int, float, bool)) or value is None
        else str(value)
    )


def h5_record(handle: Any) -> str:
    return json.dumps(
        {"version": INTEGRITY_VERSION, "sha256": digest(h5_metadata(handle))}
    )


def h5_integrity(handle: Any, path: Path | str, manifest: Any) -> bool:
    """Check an `.h5` file's metadata against its record; True if it has one
    (then every dataset must carry a checksum)."""
    raw = handle.attrs.get(INTEGRITY_H5)
    if raw is None:
        _no_record(path, manifest)
        return False
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        record = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str):
        raise damaged(path, "the integrity record", "an attribute of the wrong form")
    if record["sha256"] != digest(h5_metadata(handle)):
        raise damaged(
            path,
            "the file's metadata (config, manifest, layer and weight names, "
            "weight order or checksums)",
            "metadata with a different digest",
        )
    return True
