"""The package's modules import each other without a cycle: every module-level import points one
way, so that no import order can find a module half-initialized, and no function-local import hides
a cycle between the model folder (``model_io``) and the run folder (``runfolder``)."""

import ast
from pathlib import Path

import neuroner_tl

PACKAGE = Path(neuroner_tl.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(node: ast.AST, module: str, is_package: bool, modules: set) -> set:
    """The package's modules named by the import statement ``node`` of ``module``."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[:len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    found = {target} if target in modules else set()
    found |= {f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules}
    return found


def runtime_imports(node: ast.AST, local: bool):
    """The import statements under ``node`` that can run: never those under ``if TYPE_CHECKING``;
    those inside functions only with ``local``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        elif local or not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from runtime_imports(child, local)


def import_graph(local: bool = False) -> dict:
    """Module -> modules of the package it imports (with ``local``, the imports inside functions too)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = runtime_imports(tree, local)
        graph[module] = set().union(*(imported_modules(n, module, path.name == "__init__.py", modules)
                                      for n in nodes)) - {module}
    return graph


def find_cycle(graph: dict):
    """One cycle of ``graph`` as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return path[path.index(child):] + [child]
            if child not in state:
                cycle = visit(child, path + [child])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_module_level_imports_form_no_cycle():
    assert find_cycle(import_graph()) is None


def test_runfolder_and_model_io_do_not_import_each_other_even_inside_functions():
    graph = import_graph(local=True)
    assert not ("neuroner_tl.model_io" in graph["neuroner_tl.runfolder"]
                and "neuroner_tl.runfolder" in graph["neuroner_tl.model_io"])
    assert "neuroner_tl.model_io" not in graph["neuroner_tl.corpora"], "a hash helper lives in fingerprints"


def test_no_cycle_even_through_function_local_imports():
    """Imports inside functions are for start-up time (the CLI), never to hide a cycle."""
    assert find_cycle(import_graph(local=True)) is None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

