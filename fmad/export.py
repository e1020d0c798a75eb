"""``fmad.export``: a function's derivative code as a standalone Python module.

The module runs without fmad: it holds the generated units (helpers first, each renamed to
its module-level name), the ``fmad_rt`` helpers they call inlined from fmad's source, the
user's globals they read (see :mod:`fmad.export_inline`), and a public function under the
original name that returns ``(value, {"w": ..., "b": ...})`` exactly as
:func:`fmad.differentiate` does: it calls the generated code and shapes its tangents with an
inlined copy of :meth:`fmad.spec.Spec.gradients`. It is the variant for the given shapes,
and it refuses arguments of the ``wrt`` parameters of another shape (another variant would
run in fmad). A banner says what it was made from and how to make it again.
"""

from __future__ import annotations

import ast
import builtins
import copy
import hashlib
import inspect
import linecache
import os
import types
from collections.abc import Callable, Sequence
from typing import Any

from fmad import runtime
from fmad.api import Transformed
from fmad.errors import FmadError, UnsupportedError
from fmad.export_c import export_c
from fmad.export_inline import Namespace, Refused, line_of, literal, refuse
from fmad.printer import to_source
from fmad.spec import normalize_wrt
from fmad.transform import Unit
from fmad.variant import Variant

VERSION = "0.1.0"  # fmad.__version__ (fmad/__init__.py sits above this module)
Shapes = dict[str, tuple[int | None, ...]]


def export(
    fn: Callable[..., Any],
    *,
    wrt: Sequence[str] | str | None = None,
    shapes: Shapes | None = None,
    lang: str = "python",
    command: str | None = None,
) -> Any:
    """The source of a module that computes ``fn``'s value and gradients without fmad
    (``lang="c"``: ``{"NAME.h": ..., "NAME.c": ...}``, C99 source; see docs/export.md).

    ``fn``: a plain function or one :func:`fmad.differentiate` made (its ``wrt`` is the
    default). ``shapes``: argument name -> shape (``()`` a number, ``None`` a length known
    only at run time), as for ``show``; names left out are numbers. ``command``: the command
    that regenerates the module, for its banner (default: the ``python -m fmad export`` one).
    """
    if lang not in ("python", "c"):
        raise FmadError(f"fmad.export: unknown lang {lang!r}; choose 'python' or 'c'")
    if shapes is not None and not isinstance(shapes, dict):
        raise FmadError(
            "fmad.export: shapes must be a dict of argument name -> shape tuple, such as "
            f"{{'X': (None, 3), 'w': (3,)}}; got {type(shapes).__name__}"
        )
    transformed = transformed_for(fn, wrt)
    shapes = dict(shapes or {})
    if lang == "c":
        return export_c(transformed, shapes, c_banner(transformed, shapes, command))
    variant = transformed.variant_for_shapes(shapes)
    return Exporter(transformed, variant, shapes).module(command)


def transformed_for(fn: Callable[..., Any], wrt: Sequence[str] | str | None) -> Transformed:
    if isinstance(getattr(fn, "__wrapped__", None), types.MethodType) or isinstance(
        fn, types.MethodType
    ):
        raise FmadError(
            f"fmad.export: {fn.__name__!r} is a bound method; export the plain function "
            "(its object cannot be written into a module)"
        )
    existing = getattr(fn, "__fmad__", None)
    if isinstance(existing, Transformed):
        names = list(inspect.signature(existing.original).parameters)
        if wrt is None or normalize_wrt(fn.__name__, names, wrt) == existing.wrt:
            return existing
        return Transformed(existing.original, wrt)
    return Transformed(fn, wrt)


class Exporter:
    def __init__(self, transformed: Transformed, variant: Variant, shapes: Shapes) -> None:
        self.transformed = transformed
        self.variant = variant
        self.spec = variant.spec
        self.shapes = shapes
        self.original = transformed.original
        self.ns = Namespace({u.function.__module__ for u in variant.units})

    def module(self, command: str | None) -> str:
        name = self.original.__name__
        ns = self.ns
        public = ns.claim(name)
        inner = ns.claim(f"_{name}_tangents")
        shaper = ns.claim(f"_{name}_gradients")
        try:
            top = self.unit_text(self.variant.unit, inner, top=True)
            helpers: list[str] = []
            done = {id(self.variant.unit)}
            while len(done) <= len(ns.units):
                unit, fname = next(v for k, v in ns.units.items() if k not in done)
                done.add(id(unit))
                helpers.append(self.unit_text(unit, fname, top=False))
            wrapper = self.wrapper(public, inner, shaper)
            gradients = self.gradients(shaper)
        except Refused as error:
            raise refuse(self.original, str(error)) from None
        parts = [self.banner(command), "\n".join(sorted(set(ns.imports), key=_import_order))]
        if ns.constants:
            values = "\n".join(ns.constants)
            parts.append(f"# -- values the code reads (copied when exported)\n{values}")
        sections: dict[str, list[str]] = {}
        for section, text in ns.definitions:
            sections.setdefault(section, []).append(text)
        parts += [f"# -- {title}\n\n" + "\n\n\n".join(texts) for title, texts in sections.items()]
        generated = "\n\n\n".join(t.rstrip("\n") for t in [*helpers, top])
        parts += [f"# -- the derivative code fmad generated\n\n{generated}", gradients, wrapper]
        if ns.aliases:  # last: what they name is defined above
            parts.append(
                "# -- other names for the code that binds a name itself\n" + "\n".join(ns.aliases)
            )
        return "\n\n\n".join(p.strip("\n") for p in parts if p) + "\n"

    # -- the generated units -----------------------------------------------------------------
    def unit_text(self, unit: Unit, fname: str, top: bool) -> str:
        tree = copy.deepcopy(unit.tree)
        tree.name = fname
        a = tree.args
        if top:  # called by the public function with every argument
            a.defaults, a.kw_defaults = [], [None] * len(a.kwonlyargs)
        else:
            self.defaults(tree.args, unit.function)
        fn = unit.function
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))
        missing = object()

        def lookup(name: str) -> Any:
            if name in unit.injected:
                return unit.injected[name]
            if name in cells:
                try:
                    return cells[name].cell_contents
                except ValueError:
                    raise Refused(f"the closure variable {name!r} is not bound yet") from None
            value = fn.__globals__.get(name, missing)
            if value is missing:
                value = getattr(builtins, name, missing)
            if value is missing:
                raise Refused(f"the name {name!r} is not defined where the code runs")
            return value

        try:
            self.ns.rename_globals(tree, lookup)
        except Refused as error:
            line = (error.name and line_of(unit.tree, error.name)) or fn.__code__.co_firstlineno
            message = f"cannot export '{self.original.__name__}': {error}"
            raise UnsupportedError(unit.filename, line, message) from None
        return to_source(tree, lines=linecache.getlines(unit.filename))

    def defaults(self, args: ast.arguments, fn: types.FunctionType) -> None:
        """The original's default values (what compile gives the unit) as literals."""
        values = list(fn.__defaults__ or ())
        args.defaults = [self.literal_node(v, fn) for v in values]
        kw = fn.__kwdefaults__ or {}
        args.kw_defaults = [
            self.literal_node(kw[p.arg], fn) if p.arg in kw else None for p in args.kwonlyargs
        ]

    def literal_node(self, value: Any, fn: types.FunctionType) -> ast.expr:
        code = literal(value, self.ns.np_name)
        if code is None:
            raise Refused(f"a default value of '{fn.__name__}' ({value!r:.40}) is not a literal")
        return ast.parse(code, mode="eval").body

    # -- the public function -----------------------------------------------------------------
    def wrapper(self, public: str, inner: str, shaper: str) -> str:
        unit_args = self.variant.unit.tree.args
        signature = copy.deepcopy(unit_args)
        self.defaults(signature, self.original)
        for arg in (*signature.posonlyargs, *signature.args, *signature.kwonlyargs):
            arg.annotation = None
        for extra in (signature.vararg, signature.kwarg):
            if extra is not None:
                extra.annotation = None
        call = [p.arg for p in (*unit_args.posonlyargs, *unit_args.args)]
        if unit_args.vararg:
            call.append(f"*{unit_args.vararg.arg}")
        call += [f"{p.arg}={p.arg}" for p in unit_args.kwonlyargs]
        if unit_args.kwarg:
            call.append(f"**{unit_args.kwarg.arg}")
        np_ = self.ns.np_name()
        params = {p.arg for p in (*unit_args.posonlyargs, *unit_args.args, *unit_args.kwonlyargs)}
        guards = []
        for w, shape in zip(self.spec.wrt, self.spec.shapes, strict=True):
            if w not in params:
                continue
            want = shape or ()
            test = f"{np_}.ndim({w}) != 0" if not want else f"{np_}.shape({w}) != {want!r}"
            what = "as a number" if not want else f"of shape {want!r}"
            guards.append(
                f"    if {test}:\n        raise ValueError(\n"
                f'            f"{public}: {w} has shape {{{np_}.shape({w})}}; this module was '
                f'exported for {w} {what}: export it again with other --shapes"\n        )'
            )
        wrt = ", ".join(repr(w) for w in self.spec.wrt)
        names = ", ".join(f'"{w}": ...' for w in self.spec.wrt)
        doc = (
            f'    """``(value, {{{names}}})``, as ``fmad.differentiate(wrt=[{wrt}])`` '
            "returns them\n    for arguments of these shapes."
            '"""'
        )
        lines = [f"def {public}({ast.unparse(signature)}):", doc, *guards]
        lines.append(f"    value, *tangents = {inner}({', '.join(call)})")
        if self.spec.vectorized:
            lines.append(f"    return value, {shaper}(value, tangents)")
        else:
            lines += [
                "    if type(value) is not float:",
                f"        return value, {shaper}(value, tangents)",
                f"    return value, dict(zip(({wrt},), tangents, strict=True))",
            ]
        return "\n".join(lines)

    def gradients(self, shaper: str) -> str:
        """An inlined :meth:`fmad.spec.Spec.gradients` for this variant's spec."""
        gradient = self.ns.ref(runtime.gradient, "gradient")
        np_ = self.ns.np_name()
        spec = self.spec
        wrt = ", ".join(repr(w) for w in spec.wrt) + ("," if len(spec.wrt) == 1 else "")
        head = [
            f"def {shaper}(value, tangents):",
            '    """The tangents in the layout fmad returns (fmad.spec.Spec.gradients)."""',
        ]
        if spec.bundle:
            n = len(spec.wrt)
            body = [
                "    (t,) = tangents",
                f"    if {np_}.ndim(value) == 0:",
                f"        t = {np_}.broadcast_to(t, ({n},))",
                f"        return dict(zip(({wrt}), t.tolist(), strict=True))",
                f"    t = {np_}.broadcast_to(t, {np_}.shape(value) + ({n},))",
                f"    names = ({wrt})",
                f"    return {{name: {gradient}(t[..., i], value) for i, name in enumerate(names)}}",  # noqa: E501
            ]
        else:
            items = ", ".join(
                f"{w!r}: {gradient}(tangents[{i}], value, {s!r})"
                for i, (w, s) in enumerate(zip(spec.wrt, spec.shapes, strict=True))
            )
            body = [f"    return {{{items}}}"]
        return "\n".join(head + body)

    # -- the banner --------------------------------------------------------------------------
    def banner(self, command: str | None) -> str:
        fn = self.original
        files = sorted({u.filename for u in self.variant.units})
        sources = "\n".join(f"    {_display(f)} (sha256 {_hash(f)})" for f in files)
        shapes = shapes_text(self.shapes, list(inspect.signature(fn).parameters))
        if command is None:
            command = (
                f"python -m fmad export {_display(fn.__code__.co_filename)}:{fn.__qualname__} "
                f"--wrt {','.join(self.spec.wrt)}" + (f" --shapes {shapes}" if shapes else "")
            )
        return (
            f'"""The derivative of \'{fn.__name__}\', exported by fmad {VERSION}; it needs '
            "numpy only.\n\n"
            f"{fn.__name__}(...) returns (value, {{"
            + ", ".join(f'"{w}": ...' for w in self.spec.wrt)
            + "}) exactly as fmad.differentiate does.\n\n"
            f"source:\n{sources}\n"
            f"wrt: {', '.join(self.spec.wrt)}\n"
            f"shapes: {shapes or '(every argument a number)'} ({self.spec.describe()})\n"
            f"regenerate: {command}\n\n"
            "Do not edit: regenerate it when the source changes. Globals the code reads were\n"
            "copied when it was exported.\n"
            '"""'
        )


def c_banner(transformed: Transformed, shapes: Shapes, command: str | None) -> list[str]:
    """The lines of the C files' banner: what they were made from, how to make them again."""
    fn = transformed.original
    path = inspect.getsourcefile(fn) or fn.__code__.co_filename
    order = list(inspect.signature(fn).parameters)
    text = shapes_text(shapes, order)
    if command is None:
        command = (
            f"python -m fmad export {_display(path)}:{fn.__qualname__} --lang c "
            f"--wrt {','.join(transformed.wrt)}" + (f" --shapes {text}" if text else "")
        )
    return [
        f"The value and gradient of '{fn.__name__}', exported to C99 by fmad {VERSION}.",
        f"source: {_display(path)} (sha256 {_hash(path)})",
        f"wrt: {', '.join(transformed.wrt)}",
        f"shapes: {text or '(every argument a number)'}",
        f"regenerate: {command}",
        "Do not edit: regenerate it when the source changes.",
    ]


def shapes_text(shapes: Shapes, order: list[str]) -> str:
    """``{"X": (None, 3), "b": ()}`` -> ``X=Nx3,b=`` (the command line's form)."""
    ordered = sorted(shapes, key=lambda n: order.index(n) if n in order else len(order))
    return ",".join(
        f"{n}=" + "x".join("N" if d is None else str(d) for d in shapes[n]) for n in ordered
    )


def _display(path: str) -> str:
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    return path if relative.startswith("..") else relative


def _hash(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()[:16]
    except OSError:
        return "unreadable"


def _import_order(line: str) -> tuple[int, str]:
    return (0 if line.startswith("import ") else 1, line)


def pytest_text(
    module_file: str, fn: types.FunctionType, wrt: Sequence[str], shapes: Shapes
) -> str:
    """A small pytest file that checks the exported gradient against central differences
    (a length known only at run time is 4; edit ``arguments`` for other values)."""
    params = inspect.signature(fn).parameters
    items = []
    for p in params.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is not p.empty:
            continue
        shape = tuple(4 if d is None else d for d in shapes.get(p.name, ()))
        value = f"rng.normal(size={shape!r})" if shape else "float(rng.normal())"
        items.append(f"        {p.name!r}: {value},")
    checked = [w for w in wrt if w in params]
    return f'''"""Checks the exported gradient of {fn.__name__!r} against central differences.

Written by `python -m fmad export ... --with-test`; it needs numpy and pytest, not fmad.
"""

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location(
    "_exported", Path(__file__).with_name({os.path.basename(module_file)!r})
)
exported = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(exported)


def arguments(rng):
    """Random arguments of the exported shapes: edit them if the function needs others."""
    return {{
{chr(10).join(items)}
    }}


def central_differences(kwargs, name, h=1e-6):
    x = np.asarray(kwargs[name], dtype=float)
    value = np.asarray(exported.{fn.__name__}(**kwargs)[0], dtype=float)
    jacobian = np.empty(value.shape + x.shape)
    for index in np.ndindex(x.shape):
        step = h * max(1.0, abs(float(x[index])))
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        if np.ndim(kwargs[name]) == 0:
            plus, minus = float(plus), float(minus)
        f_plus = np.asarray(exported.{fn.__name__}(**{{**kwargs, name: plus}})[0], dtype=float)
        f_minus = np.asarray(exported.{fn.__name__}(**{{**kwargs, name: minus}})[0], dtype=float)
        jacobian[(...,) + index] = (f_plus - f_minus) / (2 * step)
    return jacobian


def test_gradient_matches_central_differences():
    rng = np.random.default_rng(0)
    kwargs = arguments(rng)
    _, grads = exported.{fn.__name__}(**kwargs)
    for name in {checked!r}:
        grad = np.asarray(grads[name], dtype=float)
        expected = central_differences(kwargs, name)
        assert np.allclose(grad, expected.reshape(grad.shape), rtol=1e-4, atol=1e-6), name
'''
