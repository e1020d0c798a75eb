"""The package's structure: each module imports only from the layers below it, no module
imports an fmad module inside a function (that would hide a cycle), and the size limits
hold (no module over 450 lines, no class over 300). docs/how-it-works.md shows this table."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "fmad"

# module -> layer; a module may import only modules of a lower layer
LAYERS: dict[str, int] = {
    # 0: no fmad imports: exceptions, node constructors, names, scopes, printing
    "errors": 0,
    "build": 0,
    "naming": 0,
    "resolve": 0,
    "printer": 0,
    "c_support": 0,
    "c_flow": 0,
    "runtime_seed": 0,
    # 1: reading source, the fence (every syntactic refusal), flattening, tangents, the
    # runtime of generated code
    "source": 1,
    "fence": 1,
    "flatten_expr": 1,
    "flatten": 2,
    "tangent": 1,
    "runtime": 1,
    "runtime_arrays": 1,
    "runtime_linalg": 1,
    "runtime_user": 1,
    "runtime_reverse": 1,
    "runtime_forms": 2,
    "trace": 1,
    "optimize": 1,
    "liveness": 1,
    "coalesce": 1,
    "floats": 1,
    "variable": 1,
    "pytree": 1,
    "reuse": 2,
    # 2-3: rules (the table), what is known about tangents, activity
    "rules": 2,
    "known": 2,
    "fresh": 2,
    "columns": 2,
    "composites": 2,
    "inplace": 3,
    "reverse_inplace": 4,
    "reverse_remat": 3,
    "adjoints": 3,
    "reverse_signs": 1,
    "reverse_kinds": 1,
    "reverse_binding": 1,
    "reverse_shapes": 3,
    "adjoints_elementwise": 4,
    "adjoints_arrays": 5,
    "adjoints_helpers": 6,
    "adjoints_linalg": 7,
    "adjoints_rows": 7,
    "runtime_transpose": 2,
    "runtime_linear": 3,
    "runtime_multi": 4,
    "runtime_select": 2,
    "spec": 2,
    "activity": 3,
    "nesting": 3,
    "specialize": 3,
    # 4: what the forward pass needs to check (mutation tables and sites)
    "effects": 4,
    "sites": 4,
    # 5: the parts of the forward emitter (mixins)
    "calls": 5,
    "operations": 5,
    "loops": 5,
    "statements": 5,
    "trees": 5,
    # 6: the forward emitter and the mutation check
    "forward": 6,
    "mutation": 6,
    "reverse_jumps": 6,
    # 7-12: driver, compile, public API, training, command line
    "transform": 7,
    "reverse_loops": 7,
    "reverse_branches": 7,
    "reverse_inline": 7,
    "reverse_forms": 7,
    "reverse_containers": 7,
    "reverse_nested": 7,
    "reverse_select": 7,
    "reverse_calls": 8,
    "reverse_rename": 8,
    "reverse": 9,
    "compile": 8,
    "dispatch": 9,
    "reverse_numbers": 9,
    "reverse_api": 11,
    "export_inline": 8,
    "c_types": 8,
    "c_expr": 9,
    "c_assign": 9,
    "c_loops": 11,
    "c_calls": 11,
    "c_scalarize": 11,
    "c_lower": 12,
    "variant": 9,
    "lazy": 10,
    "hessian_blocks": 9,
    "api": 11,
    "modes": 12,
    "train": 13,
    "higher": 12,
    "export_c": 13,
    "export": 14,
    "objective": 14,
    "__init__": 15,
    "cli": 16,
    "__main__": 17,
}


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        # a subpackage (fmad/rules/) is one layer: its modules share the package's layer
        found[".".join(path.relative_to(PACKAGE).with_suffix("").parts)] = path
    return found


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    return LAYERS[top]


def fmad_imports(tree: ast.AST, module: str) -> list[tuple[ast.AST, str]]:
    """``(node, imported fmad module)`` for every import of an fmad module in ``tree``."""
    found = []
    package = module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside a subpackage
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                targets = [f"{name}.{a.name}".strip(".") for a in node.names]
                found += [(node, t) for t in targets]
            elif node.module == "fmad":
                found += [(node, a.name) for a in node.names]
            elif node.module and node.module.startswith("fmad."):
                found.append((node, node.module.removeprefix("fmad.")))
        elif isinstance(node, ast.Import):
            found += [
                (node, a.name.removeprefix("fmad."))
                for a in node.names
                if a.name.startswith("fmad.")
            ]
    return found


@pytest.mark.parametrize("module", sorted(modules()))
def test_every_module_has_a_layer(module):
    assert module.split(".")[0] in LAYERS, f"add fmad/{module}.py to LAYERS (and the docs)"


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_go_down_the_layers(module):
    path = modules()[module]
    tree = ast.parse(path.read_text())
    mine = layer_of(module)
    same_package = module.split(".")[0]
    for node, imported in fmad_imports(tree, module):
        top = imported.split(".")[0]
        if top == same_package and "." in module:
            continue  # inside a subpackage (its __init__ assembles its modules)
        if module == "__init__":
            assert LAYERS[top] < mine
            continue
        assert LAYERS[top] < mine, (
            f"fmad/{path.name}:{node.lineno} imports fmad.{imported} "
            f"(layer {LAYERS[top]}) from layer {mine}"
        )


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_function_level_imports_of_fmad(module):
    tree = ast.parse(modules()[module].read_text())
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node, imported in fmad_imports(func, module):
                raise AssertionError(
                    f"fmad/{module}.py:{node.lineno} imports fmad.{imported} inside "
                    f"'{func.name}': import it at module level"
                )


@pytest.mark.parametrize("module", sorted(modules()))
def test_size_limits(module):
    path = modules()[module]
    text = path.read_text()
    assert len(text.splitlines()) <= 450, f"fmad/{module}.py is over 450 lines: split it"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = node.end_lineno - node.lineno + 1
            assert size <= 300, f"class {node.name} in fmad/{module}.py has {size} lines"


def test_the_table_has_no_stale_entries():
    present = {m.split(".")[0] for m in modules()}
    assert set(LAYERS) <= present


def test_no_merge_conflict_markers_are_left() -> None:
    root = PACKAGE.parent
    texts = [*root.glob("*.md"), *root.glob("docs/*.md"), *PACKAGE.rglob("*.py")]
    texts += [*root.glob("tests/*.py"), *root.glob("benchmarks/*.py"), *root.glob("examples/*")]
    for path in texts:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not line.startswith(("<<<<<<< ", ">>>>>>> ")), f"{path}:{number}"
