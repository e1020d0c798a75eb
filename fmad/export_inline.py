"""The module-level names of an exported module (see :mod:`fmad.export`).

Generated code reads names from outside itself: what the transform injected (numpy, the
``fmad_rt`` helpers, helper variants), the user's globals and closure (``np``, constants,
functions it calls), builtins. An exported module has no fmad import, so each such object
becomes a module-level name here: a module is imported, a number or a small array is
written as a literal, an ``fmad_rt`` helper (and an fmad error class it raises) is inlined
from fmad's own source, a function of the user's file is inlined from its source, any other
function is imported by its module path; anything else is refused. Each generated or
inlined function has its global names renamed to the module-level names chosen here.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import math
import symtable
import textwrap
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from fmad import errors, runtime, runtime_arrays, runtime_linalg, runtime_seed, runtime_user
from fmad.errors import UnsupportedError
from fmad.transform import Unit

# modules whose attributes generated code reads (``fmad_rt.full``): each becomes a function
RUNTIME_MODULES = {
    m.__name__ for m in (runtime, runtime_arrays, runtime_linalg, runtime_seed, runtime_user)
}
# fmad's objects an export may inline from source
INLINABLE = RUNTIME_MODULES | {errors.__name__}
MAX_ARRAY = 10_000  # elements of a global array written out as a literal


def literal(value: Any, np_name: Callable[[], str], depth: int = 0) -> str | None:
    """Python source that evaluates to ``value`` exactly, or None if there is none."""
    if depth > 20:
        return None
    if value is None or type(value) in (bool, int, str, bytes):
        return repr(value)
    if type(value) is float:
        return repr(value) if math.isfinite(value) else f"float({str(value)!r})"
    if type(value) is complex:
        return f"complex({literal(value.real, np_name)}, {literal(value.imag, np_name)})"
    if isinstance(value, np.generic) and value.dtype.kind in "biufc":
        item = literal(value.item(), np_name, depth + 1)
        return f"{np_name()}.{type(value).__name__}({item})"
    if type(value) is np.ndarray and value.dtype.kind in "biufc" and value.size <= MAX_ARRAY:
        items = literal(value.tolist(), np_name, depth + 1)
        return f"{np_name()}.array({items}, dtype={np_name()}.dtype({value.dtype.str!r}))"
    if type(value) in (tuple, list, set, frozenset):
        items = [literal(v, np_name, depth + 1) for v in value]
        if None in items:
            return None
        if type(value) is tuple:
            return f"({', '.join(items)}{',' if len(items) == 1 else ''})"
        if type(value) is list:
            return f"[{', '.join(items)}]"
        return f"{type(value).__name__}([{', '.join(items)}])"
    if type(value) is dict:
        pairs = [
            (literal(k, np_name, depth + 1), literal(v, np_name, depth + 1))
            for k, v in value.items()
        ]
        if any(None in pair for pair in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    return None


def bound_in(tree: ast.AST) -> set[str]:
    """Every name ``tree`` binds anywhere (parameters, targets, nested definitions)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            found.add(node.id)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef) and node is not tree:
            found.add(node.name)
        elif isinstance(node, ast.alias):
            found.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            found.add(node.name)
    return found


def global_reads(definition: ast.FunctionDef | ast.ClassDef) -> set[str]:
    """The names a module-level definition reads from the module (symtable: exact)."""
    table = symtable.symtable(ast.unparse(definition), "<export>", "exec")
    found = {
        s.get_name()
        for s in table.get_symbols()
        if s.is_referenced() and s.get_name() != definition.name
    }
    todo = list(table.get_children())
    while todo:
        child = todo.pop()
        todo.extend(child.get_children())
        found |= {s.get_name() for s in child.get_symbols() if s.is_global() and s.is_referenced()}
    return found


def strip_annotations(tree: ast.AST) -> None:
    """Inlined fmad code without annotations: they would need ``typing`` names."""

    class Strip(ast.NodeTransformer):
        def visit_arg(self, node: ast.arg) -> ast.arg:
            node.annotation = None
            return node

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
            node.returns = None
            self.generic_visit(node)
            return node

        def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
            if node.value is None:
                return ast.Pass()
            return ast.Assign(targets=[node.target], value=node.value)

    Strip().visit(tree)
    ast.fix_missing_locations(tree)


class Refused(Exception):
    """An object the export cannot reproduce without fmad or the user's module."""

    name: str | None = None  # the global name that reads it


def line_of(tree: ast.FunctionDef, name: str) -> int | None:
    """The first line of ``tree`` (the user's lines) whose code reads ``name``."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or isinstance(node, ast.FunctionDef):
            continue
        if isinstance(node, ast.For):
            parts: list[ast.AST] = [node.iter]
        elif isinstance(node, ast.If | ast.While):
            parts = [node.test]
        else:
            parts = [node]
        if any(isinstance(n, ast.Name) and n.id == name for p in parts for n in ast.walk(p)):
            lines.append(getattr(node, "lineno", None))
    lines = [n for n in lines if n]
    return min(lines) if lines else None


class Namespace:
    """The exported module's names: imports, literals and definitions, each made once."""

    def __init__(self, home: set[str]) -> None:
        self.home = home  # modules of the user's code being exported: inline their functions
        self.names: dict[str, Any] = {}  # module-level name -> object
        self.by_id: dict[int, str] = {}
        self.imports: list[str] = []
        self.constants: list[str] = []
        self.definitions: list[tuple[str, str]] = []  # (section, text)
        self.units: dict[int, tuple[Unit, str]] = {}  # helper variants to print
        self.aliases: list[str] = []

    def claim(self, preferred: str, avoid: set[str] = frozenset()) -> str:
        name, n = preferred, 1
        while name in self.names or name in avoid or name in vars(builtins):
            n += 1
            name = f"{preferred}_{n}"
        self.names[name] = None
        return name

    def np_name(self) -> str:
        return self.ref(np, "np")

    # -- references ------------------------------------------------------------------------
    def ref(self, obj: Any, hint: str, avoid: set[str] = frozenset()) -> str:
        """The module-level name of ``obj``; one not in ``avoid`` (a tree's own names)."""
        name = self.by_id.get(id(obj))
        if name is None:
            name = self._define(obj, hint)
        if name in avoid:  # the reading tree binds this name itself: read it under another
            alias = self.claim(name, avoid)
            self.aliases.append(f"{alias} = {name}")
            return alias
        return name

    def _remember(self, obj: Any, name: str) -> str:
        self.names[name] = obj
        self.by_id[id(obj)] = name
        return name

    def _define(self, obj: Any, hint: str) -> str:
        if getattr(builtins, hint, None) is obj and hint not in self.names:
            return self._remember(obj, hint)
        if isinstance(obj, types.ModuleType):
            return self._module(obj, hint)
        if isinstance(obj, Unit):
            name = self._remember(obj, self.claim(obj.tree.name))
            self.units[id(obj)] = (obj, name)
            return name
        code = literal(obj, self.np_name)
        if code is not None:
            name = self._remember(obj, self.claim(hint))
            self.constants.append(f"{name} = {code}")
            return name
        module = getattr(obj, "__module__", None) or ""
        if hasattr(obj, "__fmad__"):
            raise Refused(f"'{hint}' is a function fmad.differentiate made")
        if isinstance(obj, types.FunctionType) and obj.__code__.co_filename.startswith("<fmad"):
            # the first-order code of a differentiated function called inside (readable)
            return self._inline(obj, "the derivative code fmad generated for nested calls")
        if module in INLINABLE:
            return self._inline(obj, "fmad runtime helpers (inlined from fmad's source)")
        if module.split(".")[0] == "fmad":
            raise Refused(f"the code reads '{hint}', fmad's {type(obj).__name__} {obj!r:.60}")
        if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
            raise Refused(
                f"the code calls '{hint}', a lambda (a rule given to fmad.register?), which "
                "export cannot copy or import; define it with def"
            )
        if module in self.home and isinstance(obj, types.FunctionType):
            return self._inline(obj, "functions of the source file")
        imported = self._import(obj, hint, module)
        if imported is not None:
            return imported
        if isinstance(obj, types.FunctionType):
            return self._inline(obj, "functions of other files (inlined from their source)")
        raise Refused(
            f"the code reads '{hint}', an object of type {type(obj).__name__}, which export "
            "cannot write into a module (it copies numbers, strings, numpy arrays and tuples, "
            "lists or dicts of them, imports modules and copies or imports functions); pass "
            "it as an argument, or make it one of those"
        )

    def _module(self, module: types.ModuleType, hint: str) -> str:
        if module.__name__ in RUNTIME_MODULES:
            return self._remember(module, self.claim(hint))  # its attributes are inlined
        if module.__name__.split(".")[0] == "fmad" or module.__name__.startswith("_fmad"):
            raise Refused(f"the code reads '{hint}', the module {module.__name__}")
        if module.__name__ == "__main__" or imports_fmad(module):
            raise Refused(
                f"the code reads '{hint}', the module {module.__name__}, which imports fmad "
                "(or is the running script): the exported module would need it; pass what "
                "the function reads from it as an argument, or move that into a module "
                "without fmad"
            )
        preferred = {"numpy": "np"}.get(module.__name__, hint)
        name = self._remember(module, self.claim(preferred))
        last = module.__name__.rpartition(".")[2]
        if name == module.__name__:
            self.imports.append(f"import {name}")
        elif "." in module.__name__ and name == last:
            self.imports.append(f"from {module.__name__.rpartition('.')[0]} import {name}")
        else:
            self.imports.append(f"import {module.__name__} as {name}")
        return name

    def _import(self, obj: Any, hint: str, module: str) -> str | None:
        """``from module import name``, when that gives back ``obj`` (not fmad's, not a
        file fmad loaded as a script, not a module that imports fmad)."""
        qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        if not module or not isinstance(qualname, str) or "." in qualname or "<" in qualname:
            return None
        if module == "__main__" or module.startswith("_fmad") or module in self.home:
            return None
        try:
            found = importlib.import_module(module)
        except Exception:
            return None
        if getattr(found, qualname, None) is not obj:
            return None
        if imports_fmad(found):
            return None  # importing it would import fmad
        name = self._remember(obj, self.claim(qualname))
        tail = "" if name == qualname else f" as {name}"
        self.imports.append(f"from {module} import {qualname}{tail}")
        return name

    def _inline(self, obj: Any, section: str) -> str:
        """A function or class written out from its source, its globals made names here."""
        try:
            source = textwrap.dedent(inspect.getsource(obj))
            tree = ast.parse(source).body[0]
        except (OSError, TypeError, SyntaxError, IndexError) as error:
            raise Refused(f"the source of {obj!r:.60} cannot be read ({error})") from None
        if not isinstance(tree, ast.FunctionDef | ast.ClassDef):
            raise Refused(f"'{obj.__name__}' is not defined with def or class")
        if tree.decorator_list:
            raise Refused(
                f"the code calls '{obj.__name__}', which is decorated: export copies functions "
                "of the source file from their source and cannot copy what a decorator made; "
                "define it without the decorator, or in an importable module that does not "
                "import fmad (it is then imported)"
            )
        strip_annotations(tree)
        name = self._remember(obj, self.claim(obj.__name__))
        tree.name = name
        namespace = dict(getattr(obj, "__globals__", None) or vars(inspect.getmodule(obj)))
        if isinstance(obj, types.FunctionType) and obj.__closure__:
            cells = zip(obj.__code__.co_freevars, obj.__closure__, strict=True)
            namespace.update({n: c.cell_contents for n, c in cells})
        self.rename_globals(tree, lambda n: namespace.get(n, getattr(builtins, n, _MISSING)))
        self.definitions.append((section, ast.unparse(tree)))  # after its bases
        return name

    # -- renaming a definition's global names ----------------------------------------------
    def rename_globals(self, tree: ast.FunctionDef | ast.ClassDef, lookup: Callable) -> None:
        """Point every global name ``tree`` reads at its module-level name; ``fmad_rt.X``
        (a runtime module's attribute) at the inlined function ``X``."""
        reads = global_reads(tree)
        bound = bound_in(tree)
        mapping: dict[str, str] = {}
        runtime_names: dict[str, types.ModuleType] = {}
        for name in sorted(reads):
            obj = lookup(name)
            if obj is _MISSING:
                raise Refused(f"the name {name!r} is not defined where the code runs")
            if isinstance(obj, types.ModuleType) and obj.__name__ in RUNTIME_MODULES:
                runtime_names[name] = obj
                continue
            try:
                mapping[name] = self.ref(obj, name, bound - {name})
            except Refused as error:
                error.name = getattr(error, "name", None) or name
                raise

        namespace = self

        class Rename(ast.NodeTransformer):
            def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
                base = node.value
                if isinstance(base, ast.Name) and base.id in runtime_names:
                    target = getattr(runtime_names[base.id], node.attr)
                    return ast.Name(id=namespace.ref(target, node.attr, bound), ctx=node.ctx)
                self.generic_visit(node)
                return node

            def visit_Name(self, node: ast.Name) -> ast.Name:
                if node.id in runtime_names:
                    raise Refused(f"the fmad runtime module {node.id!r} is used as a value")
                if node.id in mapping and node.id not in bound:
                    node.id = mapping[node.id]
                return node

        clashing = {n for n in mapping if n in bound and mapping[n] != n}
        if clashing:
            raise Refused(f"{', '.join(sorted(clashing))} is both a global and a local name")
        Rename().visit(tree)
        ast.fix_missing_locations(tree)


_MISSING = object()


def imports_fmad(module: types.ModuleType) -> bool:
    """Whether ``module`` holds fmad or something of fmad's (importing it imports fmad)."""
    for value in list(vars(module).values()):
        try:
            owner = value.__name__ if isinstance(value, types.ModuleType) else value.__module__
        except Exception:  # an object without a module, or one whose lookup fails
            continue
        if isinstance(owner, str) and owner.split(".")[0] == "fmad":
            return True
    return False


def refuse(fn: types.FunctionType, message: str) -> UnsupportedError:
    code = fn.__code__
    return UnsupportedError(code.co_filename, code.co_firstlineno, f"cannot export: {message}")
