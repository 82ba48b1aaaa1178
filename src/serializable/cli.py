"""The `serializable` command: inspect, check and convert Keras model files.

`inspect` reads only a file's JSON and HDF5 metadata (see `_inspect`): it
never builds the model and never imports a module the file names, so it is
safe on a file from a stranger. `check` and `convert` load the model, so they
import exactly the modules passed with `--import` and nothing else.

Exit codes: 0 success; 1 a problem was found in the model (`check` found a
difference, the file does not reload, `convert` could not write a faithful
copy); 2 the input cannot be used (missing or corrupted file, classes not
registered, bad arguments). When the reader of the output goes away (`... |
head -1`), the command stops quietly with the shell's code for that, 141.

Keras is imported only inside a command (`inspect` asks it which classes are
registered here; `check` and `convert` load with it), so `--help` and
`--version` start fast. `--json` output is one JSON document on
stdout; its schema is in docs/cli.md. Progress goes to stderr, and only when
stderr is a terminal.

This module parses the arguments, calls the command and turns what it raises
into an exit code and one line on stderr, never a traceback. What a command
finds is built by `_summary`, as plain data; `_render` prints it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ._errors import MissingClassError, SerializableError

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_UNUSABLE = 2
# What a shell reports for a command stopped by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141

# ---------------------------------------------------------------------------
# Argument parsing
# ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="serializable",
        description=(
            "Inspect, check and convert Keras model files (.keras and .h5). "
            "Exit codes: 0 success, 1 a problem found in the model, 2 unusable "
            "input."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        # The distribution and where it is imported from: the unrelated
        # `serializable` package on PyPI shares the import name.
        version=f"%(prog)s {__version__} (keras-serializable, {Path(__file__).parent})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    inspect = commands.add_parser(
        "inspect",
        help="show what a model file holds, without loading it",
        description=(
            "Show a model file's format, size, the Keras version and backend "
            "that saved it, its layer tree with parameter counts, the custom "
            "classes it needs (and whether each is registered here) and its "
            "compile settings. Only metadata is read: the model is not built "
            "and no module named in the file is imported, so this is safe on "
            "files you do not trust."
        ),
    )
    inspect.add_argument("file", metavar="FILE", help="a .keras or .h5 model file")
    _add_json_option(inspect, "print a JSON object instead of text")
    inspect.set_defaults(handler=_inspect_command)

    check = commands.add_parser(
        "check",
        help="load a model and prove it survives a save/reload round trip",
        description=(
            "Load FILE with serializable.load_model, then save and reload it in "
            "each format with serializable.assert_roundtrip and compare class, "
            "configs, weights, outputs, compile and optimizer state. Exit 0 if "
            "nothing was lost, 1 if a problem was found (including a file that "
            "does not reload), 2 if the file cannot be used here."
        ),
    )
    check.add_argument("file", metavar="FILE", help="a .keras or .h5 model file")
    _add_import_option(check)
    check.add_argument(
        "--formats",
        nargs="+",
        choices=("keras", "h5"),
        default=["keras", "h5"],
        metavar="FORMAT",
        help="formats to round-trip through: keras, h5 (default: both)",
    )
    _add_json_option(check)
    check.add_argument(
        "--fresh-process",
        action="store_true",
        help=(
            "also reload each file in a new Python process that imports only "
            "the modules the model's classes were registered from"
        ),
    )
    check.set_defaults(handler=_check_command)

    convert = commands.add_parser(
        "convert",
        help="convert a model file between .keras and .h5",
        description=(
            "Load IN with serializable.load_model and write it to OUT with "
            "serializable.save_model, in the format OUT's suffix names (.keras, "
            ".h5 or .hdf5). The new file is reloaded and compared with the "
            "model before it is put in place, unless --no-verify is given."
        ),
    )
    convert.add_argument("input", metavar="IN", help="the model file to read")
    convert.add_argument("output", metavar="OUT", help="the model file to write")
    _add_import_option(convert)
    convert.add_argument(
        "--no-verify",
        action="store_true",
        help="do not reload and compare the new file before writing it",
    )
    convert.add_argument(
        "--force", action="store_true", help="replace OUT if it already exists"
    )
    _add_json_option(convert)
    convert.set_defaults(handler=_convert_command)
    return parser


def _add_json_option(
    parser: argparse.ArgumentParser,
    help: str = "print the result as a JSON object (schema in the docs) instead of text",  # noqa: E501
) -> None:
    parser.add_argument("--json", action="store_true", help=help)


def _add_import_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help=(
            "import MODULE first, so the custom classes it registers can be "
            "loaded; repeat for several modules. The current directory is "
            "searched too."
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `serializable` command line and return its exit code.

    Args:
        argv: The arguments, without the program name. `sys.argv[1:]` when
            None.

    Returns:
        0 on success, 1 when a problem was found in the model, 2 when the
        input cannot be used.

    Example:

    ```python
    from serializable.cli import main

    exit_code = main(["inspect", "model.keras", "--json"])
    ```
    """
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed pipe shows here for short output
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _silence_stdout() -> None:
    """The reader of stdout went away: send what is still buffered nowhere.

    Otherwise Python reports the failed flush at exit ("Exception ignored ...
    BrokenPipeError"), which is noise: the reader stopped on purpose.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests)
        pass


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_UNUSABLE
    try:
        code: int = args.handler(args)
    except MissingClassError as err:
        found = (getattr(ref, "module", None) for ref in err.missing)
        modules = sorted({module for module in found if isinstance(module, str)})
        imports = " ".join(f"--import {module}" for module in modules)
        # The modules are the file's claim: importing one runs its code.
        hint = (
            f"The file claims module(s) {', '.join(modules)}. Only if you trust "
            f"the file and they are your modules, on the command line: {imports}"
            if modules
            else "On the command line: pass --import MODULE for each module that "
            "registers them."
        )
        _error(args.command, f"{err}\n{hint}")
        return EXIT_UNUSABLE
    except BrokenPipeError:
        raise  # not the input's fault: main() stops quietly
    except (SerializableError, OSError) as err:  # UsageError included
        _error(args.command, str(err))
        return EXIT_UNUSABLE
    except (RecursionError, MemoryError) as err:
        _error(args.command, f"the input is beyond this command's limits ({err!r})")
        return EXIT_UNUSABLE
    except Exception as err:
        # Never a traceback for what a file holds: an error we did not foresee
        # is still reported as unusable input, with what it was.
        _error(
            args.command,
            f"unexpected {type(err).__name__}: {err}. The input cannot be used; "
            "if you believe it is a valid model file, please report this.",
        )
        return EXIT_UNUSABLE
    return code


def _error(command: str, message: str) -> None:
    print(f"serializable {command}: error: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# The commands: the work is in `_summary`, the output in `_render`, both
# imported by the command that needs them (`--help` reads neither)
# ---------------------------------------------------------------------------


def _inspect_command(args: argparse.Namespace) -> int:
    from . import _render, _summary

    report = _summary.inspect_file(args.file)
    print(_render.as_json(report) if args.json else _render.inspect_text(report))
    return EXIT_OK


def _check_command(args: argparse.Namespace) -> int:
    from . import _render, _summary

    def started(result: _summary.CheckResult) -> None:
        print(_render.check_started(result))

    result = _summary.check_file(
        args.file,
        args.formats,
        args.imports,
        fresh_process=args.fresh_process,
        progress=_render.Progress("check", 2),
        started=None if args.json else started,
    )
    if args.json:
        print(_render.as_json(_render.check_json(result)))
    else:
        print(_render.check_text(result))
    return EXIT_OK if result.ok else EXIT_PROBLEM


def _convert_command(args: argparse.Namespace) -> int:
    from . import _render, _summary

    result = _summary.convert_file(
        args.input,
        args.output,
        args.imports,
        verify=not args.no_verify,
        force=args.force,
        progress=_render.Progress("convert", 2),
    )
    if args.json:
        print(_render.as_json(_render.convert_json(result)))
    else:
        print(_render.convert_text(result))
    return EXIT_OK if result.ok else EXIT_PROBLEM
