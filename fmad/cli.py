"""The ``fmad`` command line: ``python -m fmad show path/to/file.py:function``.

Every expected failure (a target that cannot be found or imported, an fmad error about the
function) is one line ``fmad: error: ...`` on stderr and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import fmad
from fmad.errors import FmadError
from fmad.export import export as export_module
from fmad.export import pytest_text

EXIT_ERROR = 2


class CommandError(Exception):
    """A failure to report as one line on stderr."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse has already printed
        return exit_.code if isinstance(exit_.code, int) else EXIT_ERROR
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return args.run(args)
    except (CommandError, FmadError) as error:
        print(f"fmad: error: {_one_line(str(error))}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmad",
        description="Forward-mode automatic differentiation by rewriting Python source.",
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    show = commands.add_parser(
        "show",
        help="print a function's derivative code",
        description="Print the code fmad generates for a function, as Python source.",
    )
    show.add_argument(
        "target",
        metavar="TARGET",
        help="path/to/file.py:function or package.module:function",
    )
    show.add_argument(
        "--wrt",
        help="comma-separated parameters to differentiate with respect to, e.g. w,b "
        "(default: the decorator's, or every parameter)",
    )
    show.add_argument(
        "--stage",
        choices=["forward", "flat"],
        default="forward",
        help="forward: primal and tangent code (default); flat: the flattened primal alone",
    )
    show.add_argument(
        "--mode",
        choices=["forward", "reverse"],
        default="forward",
        help="forward: tangent code (default); reverse: the primal, then the adjoints",
    )
    show.add_argument(
        "--shapes",
        help="the argument shapes whose variant to show, e.g. X=100x3,y=100,w=3,b= "
        "(b= a number; a letter, as in X=Nx3, a length known only at run time; arguments "
        "left out are numbers). Default: every argument a number",
    )
    show.add_argument(
        "--order",
        type=int,
        choices=[1, 2],
        default=1,
        help="1: the derivative code (default); 2: the second-order code of the Hessian "
        "(the first-order code differentiated again)",
    )
    show.add_argument(
        "--no-comments",
        dest="comments",
        action="store_false",
        help="leave out the '# line N:' comments that quote the source line of the code",
    )
    show.add_argument(
        "--free",
        action="store_true",
        help="show the 'del' lines of the code that runs (each value freed after its last "
        "use), which the printed code leaves out",
    )
    show.add_argument(
        "--printer",
        choices=["ast", "astor"],
        default="ast",
        help="ast: ast.unparse (default); astor: needs the astor package",
    )
    show.set_defaults(run=_show)
    export = commands.add_parser(
        "export",
        help="write a function's derivative code as a standalone module",
        description="Write the derivative code of a function as a Python module that needs "
        "numpy only (no fmad): it returns (value, gradients) as fmad.differentiate does.",
    )
    export.add_argument(
        "target", metavar="TARGET", help="path/to/file.py:function or package.module:function"
    )
    export.add_argument("--wrt", help="comma-separated parameters, e.g. w,b (default: all)")
    export.add_argument(
        "--shapes",
        help="the argument shapes to export the code for, e.g. X=Nx3,y=N,w=3,b= (as for show)",
    )
    export.add_argument("--lang", choices=["python", "c"], default="python")
    export.add_argument(
        "-o",
        "--output",
        help="the file to write (default: standard output); with --lang c, PATH.h and PATH.c",
    )
    export.add_argument(
        "--with-test",
        action="store_true",
        help="also write test_NAME.py next to -o: a pytest check of the gradient against "
        "central differences",
    )
    export.set_defaults(run=_export)
    return parser


def _show(args: argparse.Namespace) -> int:
    obj = load_target(args.target)
    wrt = _parse_wrt(args.wrt)
    if hasattr(obj, "__wrapped__") and hasattr(obj, "show"):  # already differentiated
        function = obj if wrt is None else fmad.differentiate(obj.__wrapped__, wrt=wrt)
    elif callable(obj):
        function = fmad.differentiate(obj, wrt=wrt)
    else:
        raise CommandError(f"{args.target} is not a function; it is of type {type(obj).__name__}")
    if args.mode == "reverse":  # one unit for every shape
        original = getattr(function, "__wrapped__", function)
        reverse = fmad.differentiate(original, wrt=function.wrt, mode="reverse")
        text = reverse.show(stage=args.stage, printer=args.printer, comments=args.comments)
        sys.stdout.write("# fmad: reverse mode (one scalar output; every shape)\n" + text)
        return 0
    if not hasattr(function, "__fmad__"):  # made with mode="reverse": its forward code
        function = fmad.differentiate(function.__wrapped__, wrt=function.wrt)
    shapes = parse_shapes(args.shapes)
    with warnings.catch_warnings(record=True) as caught:  # e.g. astor missing: say it briefly
        warnings.simplefilter("always")
        text = function.show(
            stage=args.stage,
            printer=args.printer,
            comments=args.comments,
            shapes=shapes,
            free=args.free,
        )
    for warning in caught:
        print(f"fmad: warning: {_one_line(str(warning.message))}", file=sys.stderr)
    transformed = function.__fmad__
    variant = transformed.variant_for_shapes(shapes or {})
    where = "" if shapes is not None else " (--shapes X=100x3,w=3,b= shows another)"
    order = ""
    if args.order == 2:
        text = fmad.hessian(function, wrt=transformed.wrt).show(shapes=shapes)
        order = "second-order code of the "
    sys.stdout.write(f"# fmad: the {order}variant for {variant.spec.describe()}{where}\n")
    sys.stdout.write(text.rstrip("\n") + "\n")
    return 0


def _export(args: argparse.Namespace) -> int:
    if args.with_test and not args.output:
        raise CommandError("--with-test needs -o PATH: the test is written next to the module")
    if args.with_test and args.lang == "c":
        raise CommandError("--with-test writes a pytest file for --lang python only")
    obj = load_target(args.target)
    if not callable(obj):
        raise CommandError(f"{args.target} is not a function; it is of type {type(obj).__name__}")
    shapes = parse_shapes(args.shapes)
    command = f"python -m fmad export {args.target}"
    for flag, value in (("--wrt", args.wrt), ("--shapes", args.shapes), ("-o", args.output)):
        if value is not None:
            command += f" {flag} {value}"
    if args.with_test:
        command += " --with-test"
    if args.lang != "python":
        command += f" --lang {args.lang}"
    text = export_module(
        obj, wrt=_parse_wrt(args.wrt), shapes=shapes, lang=args.lang, command=command
    )
    if isinstance(text, dict):
        return _write_c(text, args.output)
    if not args.output:
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    try:
        path.write_text(text)
        if args.with_test:
            function = getattr(obj, "__fmad__", None)
            original = function.original if function is not None else obj
            wrt = _parse_wrt(args.wrt) or getattr(obj, "wrt", None)
            test = pytest_text(
                str(path),
                original,
                wrt or list(inspect.signature(original).parameters),
                shapes or {},
            )
            path.with_name(f"test_{path.stem}.py").write_text(test)
    except OSError as error:
        raise CommandError(f"cannot write {error.filename}: {error.strerror}") from error
    return 0


def _write_c(files: dict[str, str], output: str | None) -> int:
    """The header and the source: to standard output, or as PATH.h and PATH.c (-o PATH)."""
    (name,) = [f[:-2] for f in files if f.endswith(".c")]
    if not output:
        for file, text in files.items():
            sys.stdout.write(f"/* ---- {file} ---- */\n{text}\n")
        return 0
    path = Path(output)
    stem = path.stem if path.suffix in (".c", ".h") else path.name
    source = files[f"{name}.c"].replace(f'#include "{name}.h"', f'#include "{stem}.h"', 1)
    try:
        path.with_name(f"{stem}.h").write_text(files[f"{name}.h"])
        path.with_name(f"{stem}.c").write_text(source)
    except OSError as error:
        raise CommandError(f"cannot write {error.filename}: {error.strerror}") from error
    return 0


def parse_shapes(text: str | None) -> dict[str, tuple[int | None, ...]] | None:
    """``X=100x3,y=N,b=`` -> ``{"X": (100, 3), "y": (None,), "b": ()}``."""
    if text is None:
        return None
    shapes: dict[str, tuple[int | None, ...]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, dims = item.partition("=")
        if not equals or not name.strip().isidentifier():
            raise CommandError(
                f"--shapes takes NAME=SHAPE items such as X=100x3 or b=, got {item!r}"
            )
        lengths: list[int | None] = []
        for dim in filter(None, dims.strip().split("x")):
            if dim.isdigit():
                lengths.append(int(dim))
            elif dim.isalpha():
                lengths.append(None)  # a length known only at run time
            else:
                raise CommandError(f"--shapes: {dim!r} in {item!r} is not a length")
        shapes[name.strip()] = tuple(lengths)
    return shapes


def _parse_wrt(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise CommandError(f"--wrt needs parameter names such as w,b, got {text!r}")
    return names


def load_target(target: str) -> Any:
    """The object named by ``path/to/file.py:name`` or ``package.module:name``.

    ``name`` may be dotted (``Model.loss``). Raises :class:`CommandError` with a one-line
    message when the target cannot be found or imported.
    """
    where, _, name = target.rpartition(":")
    if not where or not name:
        raise CommandError(
            f"TARGET must be path/to/file.py:function or package.module:function, got {target!r}"
        )
    if where.endswith(".py") or "/" in where or os.sep in where:
        module = _import_file(Path(where))
    else:
        module = _import_module(where)
    obj: Any = module
    for part in name.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CommandError(f"{where} has no function {name!r}") from None
    return obj


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise CommandError(f"no such file: {path}")
    # A private module name: the user's file must not replace a module already imported.
    module_name = f"_fmad_target_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CommandError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look modules up here
    try:
        with _first_on_path(str(path.resolve().parent)):  # so the file's sibling imports work
            spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise CommandError(f"importing {path} failed: {_describe(error)}") from error
    return module


def _import_module(name: str) -> Any:
    # `python -m fmad` puts the working directory on sys.path, the `fmad` script does not.
    try:
        with _first_on_path(os.getcwd()):
            return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and (name == error.name or name.startswith(f"{error.name}.")):
            # the target (or its package) is missing, not something it imports
            raise CommandError(f"no module named {name!r}") from error
        raise CommandError(f"importing {name} failed: {_describe(error)}") from error
    except Exception as error:
        raise CommandError(f"importing {name} failed: {_describe(error)}") from error


@contextlib.contextmanager
def _first_on_path(directory: str) -> Iterator[None]:
    sys.path.insert(0, directory)
    try:
        yield
    finally:
        sys.path.remove(directory)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
