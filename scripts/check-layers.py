#!/usr/bin/env python3
"""Checks the shape of the C core (src/ursa/_core):

- no include cycle: a .c and its .h are one node, and the graph of
  `#include "..."` between nodes has no cycle (each one found is printed);
- includes point one way, down the layers: common/ < transport/ < http/ <
  ws/ (the WebSocket protocol an upgraded connection speaks) < the
  interfaces (wsgi/, asgi/), which never include each other, and module.c
  above them all;
- no mutable state at file scope: a `static` variable that is not const
  belongs in the module state or a server.

    python3 scripts/check-layers.py [CORE_DIR]   # exit 0, or 1 with one line per problem
"""
import pathlib
import re
import sys

DEFAULT_CORE = pathlib.Path(__file__).resolve().parent.parent / "src" / "ursa" / "_core"
LAYERS = {"common": 0, "transport": 1, "http": 2, "ws": 3, "wsgi": 4, "asgi": 4, "": 5}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# A file-scope static variable: `static` at the start of a line, not a
# function (no parenthesis before `=`/`;`), not const. CPython's tables of
# a type or a module are exempt: its API takes them by non-const pointer
# (and writes into a PyModuleDef), yet nothing here changes them.
STATIC_VARIABLE = re.compile(r"^static\s+(?!const\b)(?!inline\b)(?!(struct\s+)?Py(MethodDef|MemberDef|GetSetDef|"
                             r"ModuleDef|Type_Slot|Type_Spec)\b)[^(;=]*?\b\w+\s*(\[[^\]]*\]\s*)*(=|;)", re.M)


def node_of(core, path):
    return path.relative_to(core).with_suffix("").as_posix()


def layer_of(node):
    folder = node.rpartition("/")[0]
    return folder, LAYERS.get(folder)


def graph(core):
    edges = {}
    problems = []
    for path in sorted(core.rglob("*")):
        if path.suffix not in (".c", ".h"):
            continue
        node = node_of(core, path)
        targets = edges.setdefault(node, set())
        for included in INCLUDE.findall(path.read_text()):
            target = core / included
            if not target.exists():
                problems.append(f"{path.relative_to(core)}: includes \"{included}\", which is not a core file "
                                f"(write the path from _core/, e.g. \"common/buffer.h\")")
                continue
            other = node_of(core, target)
            if other != node:
                targets.add(other)
    return edges, problems


def cycles(edges):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layer_problems(edges):
    problems = []
    for node, targets in sorted(edges.items()):
        folder, rank = layer_of(node)
        if rank is None:
            problems.append(f"{node}: {folder}/ is not a layer ({', '.join(f for f in LAYERS if f)})")
            continue
        for other in sorted(targets):
            other_folder, other_rank = layer_of(other)
            if other_rank is None:
                continue
            if other_rank > rank or (other_rank == rank == LAYERS["wsgi"] and other_folder != folder):
                problems.append(f"{node} includes {other}: {other_folder or 'module'}/ is above "
                                f"{folder or 'module'}/ (includes point down the layers)")
    return problems


def static_problems(core):
    problems = []
    for path in sorted(core.rglob("*.[ch]")):
        text = path.read_text()
        for match in STATIC_VARIABLE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"{path.relative_to(core)}:{line}: mutable file-scope state "
                            f"({match.group(0).strip()}): put it in the module state or a server")
    return problems


def check(core):
    """Every problem found in the core at `core`, one line each; and the
    number of nodes."""
    edges, problems = graph(core)
    for component in cycles(edges):
        problems.append("include cycle: " + " -> ".join(component + component[:1]))
    problems += layer_problems(edges)
    problems += static_problems(core)
    return problems, len(edges)


def main():
    core = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CORE
    problems, nodes = check(core)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"check-layers: {nodes} nodes, no cycle, includes point down the layers, no mutable statics")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
