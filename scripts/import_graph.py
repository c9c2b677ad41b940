"""The package's import graph: circles (Tarjan), imports that climb a layer, and each module's floor.

The layers are docs/design.md's, bottom to top; a module may import its own layer or lower ones. A
module's floor is one more than the highest floor it imports (importing nothing from the package:
floor 0). Prints circles and upward imports and, with -v, the floors; exit 1 when either exists.
tests/test_layout.py holds the package to it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "comparer"
# docs/design.md's layers, bottom to top: the top-level modules, then the sub-packages
LAYERS = (("settings", "validation", "memory", "energy", "analytic", "prompts", "live", "paths", "lanes", "race"),
          ("models",), ("kernels",), ("engines",), ("pool", "pair"), ("bench",), ("reviews",), ("ui",),
          ("space",))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str], own: str | None = None) -> set[str]:
    """Package modules ``path`` imports, at any depth in the file (lazy imports count: a circle through
    a function-level import is still a circle in the design)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found - {own or module_name(path)}


def graph() -> dict[str, set[str]]:
    files = [p for p in (ROOT / PACKAGE).rglob("*.py")]
    modules = {module_name(p) for p in files}
    edges = {module_name(p): imports_of(p, modules) for p in files}
    for name in edges:  # a package's __init__ is not a dependency of its own modules
        edges[name] = {m for m in edges[name] if not (m != name and name.startswith(m + "."))}
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layer_of(module: str) -> int:
    """Index in LAYERS of ``comparer.<name>...`` (the package's own __init__: -1, below everything)."""
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    return next(i for i, names in enumerate(LAYERS) if parts[1] in names)


def upward(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where the imported module sits in a higher layer."""
    return sorted((a, b) for a, bs in edges.items() for b in bs if layer_of(b) > layer_of(a))


def floors(edges: dict[str, set[str]]) -> dict[str, int]:
    memo: dict[str, int] = {}

    def floor(v, seen=()):
        if v not in memo:
            memo[v] = 1 + max((floor(w, seen + (v,)) for w in edges[v] if w not in seen), default=-1)
        return memo[v]

    return {v: floor(v) for v in edges}


def main() -> int:
    edges = graph()
    found = circles(edges)
    for group in found:
        print("circle:", " <-> ".join(group))
    climbing = upward(edges)
    for importer, imported in climbing:
        print("upward:", importer, "->", imported)
    if "-v" in sys.argv:
        for name, level in sorted(floors(edges).items(), key=lambda kv: (kv[1], kv[0])):
            print(level, name)
    print(f"{len(edges)} modules, {len(found)} circles, {len(climbing)} upward imports, "
          f"{max(floors(edges).values()) + 1} floors")
    return 1 if found or climbing else 0


if __name__ == "__main__":
    raise SystemExit(main())
