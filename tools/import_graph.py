"""The package's own imports, counted the way a reader meets them: at module level and inside functions.

    python tools/import_graph.py            # counts, cycles, and each in-function import with its reason
    python tools/import_graph.py --json     # the same as JSON

A *room* is a top-level module or sub-package of `videojepa` (config, data, methods, train, ...). Reported:
- imports of `videojepa.*` made inside a function, outside `cli/` (where every sub-command imports its work
  on use, so `videojepa --help` stays fast), each with the reason written after it (`# lazy: <word>`);
- cycles between rooms (groups of rooms that import each other, counting in-function imports);
- cycles between modules (the same, module by module).
Imports under `if TYPE_CHECKING:` are not counted: they never run. `tests/test_imports.py` holds the
limits (no cycle, at most 30 in-function imports outside cli/, every one with a reason).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "videojepa"
REASON = re.compile(r"#\s*lazy:\s*([a-z][a-z0-9_-]*)")


@dataclass
class Import:
    source: str  # the importing module
    target: str  # the imported module (the package's own)
    line: int
    in_function: bool
    reason: str | None  # the word after "# lazy:" on the import's lines

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path, root: Path) -> list[Import]:
    """Every import of the package's own modules in one file."""
    source = module_name(path, root)
    package = root.name
    text = path.read_text()
    lines = text.splitlines()
    found = []

    def target_of(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue  # never runs
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom):
                module = target_of(child)
                # `from videojepa.x import y`: y is a module when videojepa/x/y.py exists
                targets = [
                    f"{module}.{a.name}" if submodule(root, f"{module}.{a.name}") else module for a in child.names
                ]
            for target in dict.fromkeys(t for t in targets if t.split(".")[0] == package):
                comment = " ".join(lines[child.lineno - 1 : child.end_lineno])
                reason = REASON.search(comment)
                found.append(Import(source, target, child.lineno, in_function, reason and reason.group(1)))
            visit(child, nested)

    visit(ast.parse(text), False)
    return found


def submodule(root: Path, module: str) -> bool:
    path = root.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan)."""
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    index, low, stack, on_stack, groups = {}, {}, [], set(), []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(groups)


def report(root: Path = PACKAGE) -> dict:
    imports = [i for path in sorted(root.rglob("*.py")) for i in imports_of(path, root)]
    in_function = [i for i in imports if i.in_function and room(i.source) != "cli"]
    room_edges = {(room(i.source), room(i.target)) for i in imports if room(i.source) != room(i.target)}
    room_edges = {(a, b) for a, b in room_edges if a and b}  # the package's own __init__ is no room
    module_edges = {(i.source, i.target) for i in imports if i.source != i.target}
    by_room: dict[str, int] = defaultdict(int)
    for i in in_function:
        by_room[room(i.source)] += 1
    return {
        "in_function_imports": len([i for i in imports if i.in_function]),
        "in_function_imports_outside_cli": len(in_function),
        "in_function_by_room": dict(sorted(by_room.items(), key=lambda kv: -kv[1])),
        "room_cycles": cycles(room_edges),
        "module_cycles": cycles(module_edges),
        "in_function": [asdict(i) for i in in_function],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--root", type=Path, default=PACKAGE, help="the package folder (default: videojepa/)")
    args = parser.parse_args()
    found = report(args.root)
    if args.json:
        print(json.dumps(found, indent=2))
        return
    print(
        f"in-function imports of the package's own modules: {found['in_function_imports']}, "
        f"{found['in_function_imports_outside_cli']} outside cli/ {found['in_function_by_room']}"
    )
    print(f"cycles between rooms: {len(found['room_cycles'])}", *(" <-> ".join(c) for c in found["room_cycles"]))
    print(f"cycles between modules: {len(found['module_cycles'])}", *(" <-> ".join(c) for c in found["module_cycles"]))
    for i in found["in_function"]:
        print(f"  {i['source']}:{i['line']} -> {i['target']}  (lazy: {i['reason'] or 'NO REASON'})")


if __name__ == "__main__":
    main()
