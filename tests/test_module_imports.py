"""The Python layer's shape: each module of the ursa package imports on its
own in a fresh interpreter, and the imports among them, those inside
functions included, form no cycle (docs/ARCHITECTURE.md, "The Python
side")."""
import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent.parent / "src" / "ursa"
MODULES = sorted(path.stem for path in PACKAGE_DIR.glob("*.py") if path.stem != "__main__")
# Modules that exist for an optional package and need it to import at all.
NEEDS = {"gunicorn": "gunicorn", "gworker": "gunicorn"}


def imported_modules(name):
    """The package's modules that module `name` imports ('__init__' for the package itself)."""
    tree = ast.parse((PACKAGE_DIR / f"{name}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from . import x: a module, or a name of __init__
                found.update(alias.name if alias.name in MODULES else "__init__" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] if "." in alias.name else "__init__"
                         for alias in node.names if alias.name.split(".")[0] == "ursa")
    return found & (set(MODULES) - {name})


@pytest.mark.parametrize("name", MODULES)
def test_each_module_imports_alone(name):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    module = "ursa" if name == "__init__" else f"ursa.{name}"
    completed = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_the_modules_import_each_other_without_a_cycle():
    graph = {name: imported_modules(name) for name in MODULES}
    done, path = set(), []

    def visit(name):
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(name):] + [name]))
        if name in done:
            return
        path.append(name)
        for imported in sorted(graph[name]):
            visit(imported)
        path.pop()
        done.add(name)

    for name in MODULES:
        visit(name)
    assert graph["arbiter"] >= {"worker", "listeners", "upgrade"}  # the graph is read, not empty
