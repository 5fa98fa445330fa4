"""Print every import cycle among lavabench's modules (exit 1 if any): `make lint` runs it.

Uses grimp, the graph library under import-linter, so it sees the same imports the
contracts do (lazy imports inside functions included).
"""

from __future__ import annotations

import sys
from pathlib import Path

# the checkout this script is in, not whichever lavabench the interpreter would find first
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grimp


def find_cycles(package: str = "lavabench") -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph = grimp.build_graph(package)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, []))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def main() -> int:
    cycles = find_cycles()
    for cycle in cycles:
        print("import cycle: " + " <-> ".join(cycle))
    print(f"{len(cycles)} import cycle(s) in lavabench")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
