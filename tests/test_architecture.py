"""The package's shape: imports go one way, the docs name every module, no profile name is branched on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "amuro_utils"


def _imports() -> dict[str, set[str]]:
    """module -> the package modules it imports (at module level or inside functions)."""
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name, deps = path.stem, set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module} if node.module else {a.name for a in node.names}
        graph[name] = deps - {name}
    return graph


def test_imports_have_no_cycle():
    graph = _imports()

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    cycles = sorted(m for m in graph if m in reach(m))
    assert cycles == [], f"import cycle through {cycles}"
    # the study description does not depend on what runs it, and figures do not depend on the pipeline
    assert "pipeline" not in reach("plan") | reach("cost") | reach("plots") | reach("runner")


def test_architecture_doc_names_every_module():
    doc = (PACKAGE.parent / "docs" / "ARCHITECTURE.md").read_text()
    named = set(re.findall(r"\| `(\w+)` \|", doc))
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules <= named, f"docs/ARCHITECTURE.md does not describe {sorted(modules - named)}"


def test_no_profile_name_is_branched_on_outside_profiles():
    names = ("tiny", "smoke", "paper", "paper-reference", "paper-fixed")
    pattern = re.compile(r"(==|!=)\s*['\"](" + "|".join(map(re.escape, names)) + r")['\"]")
    offenders = [f"{p.name}:{i}" for p in PACKAGE.glob("*.py") if p.name != "profiles.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line) and "results_source" not in line and "source" not in line]
    assert offenders == []
