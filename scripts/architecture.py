"""The package's import graph, drawn from the source: each layer with its modules and the layers each imports.

`python scripts/architecture.py` prints the block docs/ARCHITECTURE.md embeds between its `layers:begin` and
`layers:end` markers; `--write` puts it there. tests/test_architecture.py checks the doc against it and the graph
against the layers (the same rule as the import-linter contract in pyproject.toml).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "amuro_utils"
DOC = REPO / "docs" / "ARCHITECTURE.md"
LAYERS = ("config", "data", "store", "models", "stats", "study", "figures", "verdicts")  # bottom to top
FRONT = ("pipeline", "show", "run")  # the front ends, above every layer, independent of each other
BEGIN, END = "<!-- layers:begin (scripts/architecture.py --write) -->", "<!-- layers:end -->"


def modules() -> dict[str, Path]:
    """Dotted name below the package ('study.plan', 'pipeline', 'stats' for a package's __init__) -> file."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if parts:
            out[".".join(parts)] = path
    return out


def imports() -> dict[str, set[str]]:
    """module -> the package modules it imports (at module level or inside functions), as dotted names."""
    found, graph = modules(), {}
    for name, path in found.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                stem = [*package[:len(package) - node.level + 1], *(node.module.split(".") if node.module else [])]
                for alias in node.names:
                    whole = ".".join([*stem, alias.name])
                    deps.add(whole if whole in found else ".".join(stem))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amuro_utils."):
                deps.add(node.module.removeprefix("amuro_utils."))
        graph[name] = {d for d in deps if d and d != name}
    return graph


def layer(module: str) -> int:
    """0 (config) … 7 (verdicts); 8: a front end."""
    top = module.split(".")[0]
    return len(LAYERS) if top in FRONT else LAYERS.index(top)


def upward() -> list[str]:
    """Every import that breaks the layers: into a higher layer, or from one front end into another."""
    return sorted(f"{m} -> {d}" for m, deps in imports().items() for d in deps
                  if layer(d) > layer(m) or (layer(d) == layer(m) == len(LAYERS)
                                             and d.split(".")[0] != m.split(".")[0]))


def block() -> str:
    """The layers, top to bottom: each one's modules and the layers below it that it imports."""
    graph, found = imports(), modules()
    lines = ["```"]
    for index in range(len(LAYERS), -1, -1):
        names = FRONT if index == len(LAYERS) else (LAYERS[index],)
        members = sorted(m.split(".", 1)[1] if "." in m else m for m in found
                         if layer(m) == index and found[m].name != "__init__.py")
        if index == len(LAYERS):
            members = [m for m in sorted(found) if layer(m) == index and found[m].name != "__init__.py"]
        used = sorted({LAYERS[layer(d)] if layer(d) < len(LAYERS) else d.split(".")[0]
                       for m in graph if layer(m) == index for d in graph[m] if layer(d) < index})
        title = " | ".join(names)
        lines.append(f"{title:<22} {', '.join(members)}")
        lines.append(f"{'':<22} └─ imports: {', '.join(used) if used else '(nothing of the package)'}")
    lines.append("```")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = block()
    if argv == ["--write"]:
        doc = DOC.read_text()
        head, _, rest = doc.partition(BEGIN)
        _, _, tail = rest.partition(END)
        DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
