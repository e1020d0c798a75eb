"""``fmad.export(fn, lang="c")``: the value and gradient of a function as C99 source.

It lowers fmad's own first-order code for numbers (the all-scalar variant's units) statement
by statement (:mod:`fmad.c_lower`), so the C computes the same operations in the same order
as the Python fmad runs. The ABI (written into the header's comment):

- a number argument is a ``double`` (a ``long`` if the code uses it as an integer: a
  ``range`` bound, an index); a 1-D array ``x`` is ``const double *x, size_t x_len``; a 2-D
  array ``X`` is ``const double *X, size_t X_rows, size_t X_cols`` (row-major, C-contiguous);
- the last argument is ``NAME_grad *grad``, one member per ``wrt`` parameter (``double``,
  or ``double *`` to a buffer the caller allocates for an array parameter);
- the function returns the value. No ``malloc``, no globals: it is re-entrant.

Helper functions become ``static`` functions that return the value and write their tangents
through pointers.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import linecache
import types
from collections.abc import Callable
from typing import Any

from fmad import c_support
from fmad.api import Transformed
from fmad.c_lower import C_TYPE, INDENT, Lowerer
from fmad.c_scalarize import Scalarizer, Unscalarizable
from fmad.c_types import CType, int_sinks
from fmad.errors import ExportError, FmadError
from fmad.source import read_function
from fmad.spec import spec_for_shapes
from fmad.transform import Unit

KEYWORDS = set(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while _Bool _Complex _Imaginary bool true false".split()
)
LIBC = set(
    "acos acosh asin asinh atan atan2 atanh cbrt ceil copysign cos cosh erf erfc exp exp2 expm1 "
    "fabs fdim floor fma fmax fmin fmod frexp hypot ilogb isfinite isinf isnan isnormal ldexp "
    "lgamma llrint llround log log10 log1p log2 logb lrint lround modf nan nearbyint nextafter "
    "pow remainder remquo rint round scalbn signbit sin sinh sqrt tan tanh tgamma trunc labs "
    "abs j0 j1 jn y0 y1 yn gamma NAN INFINITY HUGE_VAL size_t NULL offsetof ptrdiff_t "
    "wchar_t main errno assert grad".split()
)


class CNames:
    """The C identifiers of one function: Python names kept unless C reserves them."""

    def __init__(self, python: set[str], taken: set[str]) -> None:
        self.python = python
        self.taken = set(taken)
        self.map: dict[str, str] = {}

    def abi(self, name: str) -> str:
        """A name the ABI fixes (``x_len``): a Python name equal to it is renamed."""
        self.taken.add(name)
        return name

    def __call__(self, name: str) -> str:
        if name not in self.map:
            c = name
            while c in KEYWORDS or c in LIBC or c in self.taken or c.startswith("fm_"):
                c = f"{c}_" if not c.startswith("fm_") else f"u{c}"
            if not c.isascii():
                raise ValueError(name)
            self.taken.add(c)
            self.map[name] = c
        return self.map[name]


def export_c(transformed: Transformed, shapes: dict, about: list[str]) -> dict[str, str]:
    """``{"NAME.h": ..., "NAME.c": ...}``; ``about``: the banner's lines (source, wrt...).

    A function of numbers and data arrays is lowered as fmad differentiates it; one with
    an array in ``wrt``, or one the direct lowering refuses that is written with whole
    arrays, is first made a loop function of numbers (:mod:`fmad.c_scalarize`)."""
    params = set(inspect.signature(transformed.original).parameters)
    spec_for_shapes(transformed.wrt, params, shapes, False, transformed.original.__name__)
    array_wrt = [w for w in transformed.wrt if shapes.get(w, ())]
    if not array_wrt:
        try:
            return CExport(transformed, shapes).files(about)
        except ExportError as error:
            refused = error
    fn = transformed.original
    src = read_function(fn)
    try:
        tree, packed = Scalarizer(
            src.tree, shapes, transformed.wrt, resolver(fn), fn.__globals__
        ).function()
    except Unscalarizable as error:
        if not array_wrt:
            raise refused from None
        message = f"the C export does not support {error}; write the function with numbers "
        message += "and loops over the data, or export Python (lang='python')"
        raise ExportError(
            src.filename, error.lineno or fn.__code__.co_firstlineno, message
        ) from None
    loops = compile_scalarized(tree, fn)
    wrt = [n for w in transformed.wrt for n in packed.get(w, [w])]
    try:
        return CExport(Transformed(loops, wrt), shapes, packed).files(about)
    except FmadError as error:  # in the loop function: say so at the user's function
        if not array_wrt:
            raise refused from None
        message = f"the C export could not lower the loop form of this function ({error})"
        raise ExportError(src.filename, fn.__code__.co_firstlineno, message) from None


def resolver(fn: types.FunctionType) -> Callable[[ast.expr], Any]:
    """What a name or ``module.attribute`` of ``fn``'s code means (None: unknown)."""
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))

    def resolve(node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            if node.id in cells:
                return cells[node.id].cell_contents
            return fn.__globals__.get(node.id, getattr(builtins, node.id, None))
        if isinstance(node, ast.Attribute):
            base = resolve(node.value)
            return getattr(base, node.attr, None) if isinstance(base, types.ModuleType) else None
        return None

    return resolve


def compile_scalarized(tree: ast.FunctionDef, fn: types.FunctionType) -> types.FunctionType:
    """The loop function, compiled under a file name linecache holds (fmad reads its
    source from there), with ``fn``'s globals and closure values."""
    text = ast.unparse(ast.Module([tree], []))
    filename = f"<fmad-c {fn.__module__}.{fn.__qualname__}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    namespace = dict(fn.__globals__)
    cells = zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True)
    namespace.update({n: c.cell_contents for n, c in cells})
    exec(compile(text, filename, "exec"), namespace)  # noqa: S102 (fmad's own rewrite)
    return namespace[tree.name]


class CExport:
    """``packed``: (for a function :mod:`fmad.c_scalarize` rewrote) each array parameter
    of ``wrt`` -> the number parameters that stand for its elements."""

    def __init__(self, transformed: Transformed, shapes: dict, packed: dict | None = None) -> None:
        self.packed = packed or {}
        self.transformed = transformed
        self.original = transformed.original
        self.filename = inspect.getsourcefile(self.original) or "<unknown>"
        self.line = self.original.__code__.co_firstlineno
        self.name = self.original.__name__
        self.shapes = shapes
        if not self.name.isascii() or self.name in KEYWORDS | LIBC or self.name.startswith("fm_"):
            raise self.error(f"the C name '{self.name}' (C or libm uses it)", "rename it")
        for w in transformed.wrt:
            if shapes.get(w, ()) != () and w not in self.packed:
                raise self.error(
                    f"differentiating with respect to the array '{w}' (shape {shapes[w]})",
                    "the C export differentiates with respect to numbers: pass the elements "
                    "as number parameters, or export Python (lang='python')",
                )
            if w in KEYWORDS:
                raise self.error(f"the parameter name '{w}' (a C keyword)", "rename it")
        self.variant = transformed.variant_for_shapes({})
        self.helpers: dict[int, tuple[Unit, str, list[CType], int]] = {}
        self.order: list[int] = []
        self.used: set[str] = set()
        self.unit_names = {u.tree.name for u in self.variant.units}  # no local is named so
        self.function_names = CNames(set(), {self.name, f"{self.name}_grad"})

    def error(self, what: str, instead: str, line: int | None = None) -> ExportError:
        message = f"the C export does not support {what}; {instead}"
        return ExportError(self.filename, line or self.line, message)

    # -- the units ---------------------------------------------------------------------------
    def names_for(self, unit: Unit) -> CNames:
        python = {n.id for n in ast.walk(unit.tree) if isinstance(n, ast.Name)}
        python |= {a.arg for a in ast.walk(unit.tree) if isinstance(a, ast.arg)}
        taken = self.function_names.taken | self.unit_names | {"grad"}
        return CNames(python, taken)

    def params_of(self, unit: Unit, kinds: list[CType], names: CNames) -> tuple[dict, list, dict]:
        args = unit.tree.args
        if args.vararg or args.kwarg:
            raise self.error("*args or **kwargs", "name the parameters", unit.tree.lineno)
        order = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        params: dict[str, CType] = dict(zip(order, kinds, strict=True))
        text, lengths = [], {}
        for name, kind in params.items():
            c = names(name)
            if kind == "arr1":
                lengths[name] = [names.abi(f"{c}_len")]
            elif kind == "arr2":
                lengths[name] = [names.abi(f"{c}_rows"), names.abi(f"{c}_cols")]
            if kind in ("arr1", "arr2"):
                text += [f"const double *{c}", *(f"size_t {n}" for n in lengths[name])]
            else:
                text.append(f"{C_TYPE[kind]} {c}")  # type: ignore[index]
        return params, text, lengths

    def unpack(self, params: dict, text: list[str], lengths: dict, names: CNames) -> list[str]:
        """The ABI's pointer for each packed array parameter (in ``text``, in place of its
        numbers), and the lines that check its length and read its elements; the fixed
        lengths of the data arrays are checked too (``X @ w`` needs them)."""
        lines = []
        for array, numbers in self.packed.items():
            c = names.abi(array)
            size = names.abi(f"{c}_len")
            first = text.index(f"double {names(numbers[0])}")
            del text[first : first + len(numbers)]
            text[first:first] = [f"const double *{c}", f"size_t {size}"]
            lines.append(f"{INDENT}if ({size} != {len(numbers)}) goto fm_fail; /* its shape */")
            lines += [f"{INDENT}double {names(n)} = {c}[{j}];" for j, n in enumerate(numbers)]
        for name in params:
            shape = self.shapes.get(name, ())
            for length, fixed in zip(lengths.get(name, []), shape, strict=True):
                if fixed is not None:
                    lines.append(f"{INDENT}if ({length} != {fixed}) goto fm_fail; /* shapes */")
        return lines

    def top_kinds(self, unit: Unit) -> list[CType]:
        args = unit.tree.args
        sinks = int_sinks(unit.tree)
        kinds: list[CType] = []
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs):
            shape = self.shapes.get(a.arg, ())
            if len(shape) > 2:
                raise self.error(f"the {len(shape)}-D array '{a.arg}'", "pass 1-D or 2-D arrays")
            if shape:
                kinds.append("arr1" if len(shape) == 1 else "arr2")
            else:
                is_int = a.arg in sinks and a.arg not in self.transformed.wrt
                kinds.append("long" if is_int else "double")
        return kinds

    def callee(self, unit: Unit, kinds: list[CType], node: ast.AST, outputs: int) -> str:
        known = self.helpers.get(id(unit))
        if known is not None:
            if known[2] != kinds:
                raise self.error(
                    f"calling '{unit.function.__name__}' with arguments of other types "
                    f"({', '.join(map(str, kinds))} here, {', '.join(map(str, known[2]))} "
                    "before)",
                    "call it with the same types everywhere",
                    getattr(node, "lineno", None),
                )
            return known[1]
        cname = self.function_names(unit.tree.name)
        self.helpers[id(unit)] = (unit, cname, kinds, outputs)
        self.order.append(id(unit))
        return cname

    def lower(self, unit: Unit, kinds: list[CType], top: bool, outputs: list[str], head: str):
        names = self.names_for(unit)
        params, text, lengths = self.params_of(unit, kinds, names)
        prefix = self.unpack(params, text, lengths, names) if top and self.packed else []
        try:
            lowerer = Lowerer(unit, params, names, self.callee, outputs, lengths)
            body = lowerer.body()
        except ValueError as error:
            raise self.error(f"the non-ASCII name {error}", "rename it", unit.tree.lineno) from None
        self.used |= lowerer.used
        body = prefix + body
        lowerer.fails = lowerer.fails or bool(prefix)
        last = unit.tree.body[-1] if unit.tree.body else None
        if not isinstance(last, ast.Return):
            lowerer.fails = True
            body.append(f"{INDENT}goto fm_fail; /* the end of the function: Python returns None */")
        if lowerer.fails:
            body.append("fm_fail:")
            body += [f"{INDENT}{out} = NAN;" for out in outputs if top]
            body.append(f"{INDENT}return NAN;")
        return head.format(params=", ".join(text)), body

    # -- the files ---------------------------------------------------------------------------
    def files(self, about: list[str]) -> dict[str, str]:
        unit = self.variant.unit
        grad = f"{self.name}_grad"
        head = f"double {self.name}({{params}}, {grad} *grad)"
        outputs = []
        for w in self.abi_wrt():
            numbers = self.packed.get(w)
            outputs += (
                [f"grad->{w}[{j}]" for j in range(len(numbers))] if numbers else [f"grad->{w}"]
            )
        signature, body = self.lower(unit, self.top_kinds(unit), True, outputs, head)
        body = [f"{INDENT}int fm_err_flag = 0;", f"{INDENT}int *fm_err = &fm_err_flag;"] + body
        functions = [(signature, body)]
        prototypes = []
        done = 0
        while done < len(self.order):
            helper, cname, kinds, count = self.helpers[self.order[done]]
            done += 1
            outs = [f"double *fm_out_{i + 1}" for i in range(count)]
            tail = ", ".join([*outs, "int *fm_err"])
            head = f"static double {cname}({{params}}, {tail})".replace("(, ", "(")
            outputs = [f"*fm_out_{i + 1}" for i in range(count)]
            sig, text = self.lower(helper, kinds, False, outputs, head)
            prototypes.append(f"{sig};")
            functions.insert(1, (sig, text))
        return {
            f"{self.name}.h": self.header(about, signature),
            f"{self.name}.c": self.source(about, prototypes, functions),
        }

    def abi_wrt(self) -> list[str]:
        """The ``wrt`` parameters of the ABI: an array once (not its numbers)."""
        owner = {n: array for array, numbers in self.packed.items() for n in numbers}
        found: list[str] = []
        for w in self.transformed.wrt:
            if owner.get(w, w) not in found:
                found.append(owner.get(w, w))
        return found

    def header(self, about: list[str], signature: str) -> str:
        guard = f"FMAD_{self.name.upper()}_H"
        members = "\n".join(
            f"    double *{w}; /* d {self.name} / d {w}: {len(self.packed[w])} doubles the caller "
            "allocates */"
            if w in self.packed
            else f"    double {w}; /* d {self.name} / d {w} */"
            for w in self.abi_wrt()
        )
        abi = ABI.format(name=self.name, grad=f"{self.name}_grad")
        comment = "\n".join(f" * {line}".rstrip() for line in [*about, "", *abi.splitlines()])
        return (
            f"/*\n{comment}\n */\n#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n\n"
            '#ifdef __cplusplus\nextern "C" {\n#endif\n\n'
            f"typedef struct {{\n{members}\n}} {self.name}_grad;\n\n{signature};\n\n"
            f"#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {guard} */\n"
        )

    def source(self, about: list[str], prototypes: list[str], functions: list) -> str:
        comment = "\n".join(f" * {line}".rstrip() for line in about)
        parts = [
            f"/*\n{comment}\n */",
            f'#include <math.h>\n#include <stddef.h>\n\n#include "{self.name}.h"',
            PRAGMA,
            *c_support.helper_texts(self.used),
        ]
        if prototypes:
            parts.append("\n".join(prototypes))
        for signature, body in functions:
            parts.append(f"{signature}\n{{\n" + "\n".join(body) + "\n}")
        return "\n\n".join(parts) + "\n"


PRAGMA = """/* Keep every a * b + c two roundings, as in Python (no fused multiply-add). GCC
   does not know the pragma, and contracts nothing in ISO C mode (-std=c99 implies
   -ffp-contract=off). */
#if defined(__clang__) || !defined(__GNUC__)
#pragma STDC FP_CONTRACT OFF
#endif"""

ABI = """ABI: double {name}(<arguments in the Python order>, {grad} *grad);
  a number argument is a double (a long if the code uses it as an integer);
  a 1-D array x is `const double *x, size_t x_len`; a 2-D array X is
  `const double *X, size_t X_rows, size_t X_cols`, row-major, C-contiguous;
  grad points to a {grad} the caller owns, one member per wrt parameter, filled in:
  a double for a number, a double * for an array parameter (a buffer the caller
  allocates, of the array's size; the array argument must have that size).
The function returns the value. No malloc, no globals: it is re-entrant.
Where Python raises (a division by zero, a math domain error, an overflow, an index
out of range), it returns NaN and fills grad with NaN.
Compile with -std=c99 (or -ffp-contract=off) and without -ffast-math: the value and
the gradient are then those fmad computes in Python, bit for bit (libm's functions
stand for numpy's, which may differ from them in the last bit)."""
