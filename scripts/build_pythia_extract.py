#!/usr/bin/env python3
"""Rebuild data/pythia_evals/ from a copy of github.com/EleutherAI/pythia: the zero-shot lm-evaluation-harness
results of the 16 Pythia ladders (8 sizes × the Pile / the deduplicated Pile), every published checkpoint, the
benchmarks BENCHMARKS, accuracy with its standard error — one CSV row per (ladder, step, task).

    python scripts/build_pythia_extract.py --repo PATH [--commit REV] [--out data/pythia_evals]

PATH is a clone, or a bare git directory (e.g. what the fetch tool leaves under /work/.mirror/); REV (default
HEAD) is the commit read, recorded in the output's SOURCE.md. Every file is checked before anything is written:
its revision=stepN against its file name, 0-shot, every benchmark present with acc and acc_stderr.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amuro_utils.config.profiles import PYTHIA_EVAL_STEPS, PYTHIA_LADDERS  # noqa: E402
from amuro_utils.models import lmeval  # noqa: E402  (the repository's package, importable from a checkout)

EVALS = "evals/pythia-v1"
# The benchmarks kept: lm-eval task names as the files write them. Left out: MMLU's 57 subjects
# (hendrycksTest-*: 0.24–0.28 mean accuracy for every ladder at step143000, around chance, and 7× the rows of the
# rest) and CrowS-Pairs (a bias measure without accuracy).
BENCHMARKS = ("arc_easy", "arc_challenge", "sciq", "piqa", "winogrande", "lambada_openai", "logiqa", "wsc")
# EleutherAI/pythia-1b was trained in bf16 (the repository's README: "fp16 for all models except
# EleutherAI/pythia-1b which trained with bf16"); its evaluations are filed under that name.
FOLDERS = {ladder: ladder for ladder in PYTHIA_LADDERS} | {"pythia-1b": "pythia-1b-bf16"}


class Tree:
    """Read-only access to one commit of the repository, whether PATH is a clone or a bare git directory."""

    def __init__(self, path: Path, commit: str):
        self.git = ["git", f"--git-dir={path / '.git' if (path / '.git').exists() else path}"]
        self.commit = self._run("rev-parse", f"{commit}^{{commit}}").strip()

    def _run(self, *args) -> str:
        done = subprocess.run([*self.git, *args], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def files(self, folder: str) -> list[str]:
        """The paths of the files under `folder` at the commit."""
        return self._run("ls-tree", "-r", "--name-only", self.commit, folder).split()

    def read(self, path: str) -> str:
        """One file's text at the commit."""
        return self._run("show", f"{self.commit}:{path}")

    def last_change(self, folder: str) -> str:
        """'<short hash> <date>' of the last commit that changed `folder`."""
        return self._run("log", "-1", "--format=%h %ad", "--date=short", self.commit, "--", folder).strip()


def ladder_rows(tree: Tree, ladder: str) -> list[list]:
    """[ladder, step, task, acc, acc_stderr, n] of every benchmark of one ladder's zero-shot files, checked."""
    folder = f"{EVALS}/{FOLDERS[ladder]}/zero-shot"
    files = [f for f in tree.files(folder) if f.endswith(".json")]
    rows, steps = [], []
    for name in files:
        path = Path(name)
        data = json.loads(tree.read(name))
        args = lmeval.model_args(data.get("config", {}), path)
        step = lmeval.step_of(path, args)  # refuses a revision that disagrees with the file name
        if data["config"].get("num_fewshot") != 0:
            raise SystemExit(f"{name}: num_fewshot {data['config'].get('num_fewshot')!r}, expected 0")
        steps.append(step)
        for task in BENCHMARKS:
            found = lmeval.metric(data["results"].get(task, {}), "acc", path, task)
            if found is None:
                raise SystemExit(f"{name}: no acc for {task}")
            acc, stderr = found
            rows.append([ladder, step, task, repr(acc), repr(stderr), _n(lmeval.derived_n(acc, stderr))])
    if sorted(steps) != sorted(PYTHIA_EVAL_STEPS):
        raise SystemExit(f"{folder}: steps {sorted(steps)}, expected the 27 published ones {list(PYTHIA_EVAL_STEPS)}")
    return rows


def _n(value: float) -> str:
    return "" if value != value else str(int(value))  # NaN: the stderr does not pin a whole item count


def source_md(tree: Tree, n_rows: int) -> str:
    """SOURCE.md: where the extract comes from, under which licence, what was kept and how it was read."""
    changed = tree.last_change(EVALS)
    return f"""# Pythia's published evaluations (extract)

`zero_shot.csv` is an extract of EleutherAI's published lm-evaluation-harness results for the Pythia suite:

- **Repository**: https://github.com/EleutherAI/pythia, commit
  `{tree.commit}` (the last change to `{EVALS}/` is `{changed}`).
- **Licence**: Apache-2.0 (the repository's `LICENSE`), © EleutherAI. Keep this attribution wherever the file is
  shipped. The numbers are EleutherAI's; this project only selected and reformatted them.
- **Files read**: `{EVALS}/<ladder>/zero-shot/*.json` for the 16 ladders `pythia-70m` … `pythia-12b-deduped`
  (8 sizes, each trained on the Pile and on the deduplicated Pile); `pythia-1b`'s are filed as `pythia-1b-bf16`
  (EleutherAI/pythia-1b is the run trained in bf16, the repository's README says). 27 checkpoints per ladder:
  step0, step1 … step512 (log-spaced), step1000, then every 10,000 steps from step3000 to step143000. Format:
  lm-eval 0.3 (`results`, `versions`, `config` with `model_args` `pretrained=EleutherAI/pythia-v1.1-<size>,
  revision=stepN` and `num_fewshot` 0).
- **Kept**: the benchmarks {', '.join(f'`{b}`' for b in BENCHMARKS)}; per (ladder, step, task) lm-eval's `acc`
  and `acc_stderr`, written exactly as the JSON holds them ({n_rows} rows). Left out: MMLU's 57 subjects
  (`hendrycksTest-*`; 0.24–0.28 mean accuracy for every ladder at step143000, around chance) and CrowS-Pairs (a bias
  measure, no accuracy).
- **`n`** (added here): the item count lm-eval's standard error implies, sqrt(p(1 − p)/(n − 1)), where that is a
  whole number that makes `acc` a whole share of it (`lmeval.derived_n`); empty where it is not (accuracy 0 or 1).
- **Caveat** (the repository's README): the evaluations were run with an lm-eval version of early 2023 and may not
  be reproducible with the current harness.

Rebuild: `python scripts/build_pythia_extract.py --repo <clone or bare git dir> --commit {tree.commit[:7]}`.
Read by `amuro_utils.models.lmeval.load_extract` (results source `pythia-evals`).
"""


def main(argv=None) -> None:
    """Read the commit, check every file, then write zero_shot.csv and SOURCE.md into --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="a clone of EleutherAI/pythia or its git directory")
    parser.add_argument("--commit", default="HEAD")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "pythia_evals")
    args = parser.parse_args(argv)
    tree = Tree(args.repo, args.commit)
    rows = [row for ladder in PYTHIA_LADDERS for row in ladder_rows(tree, ladder)]
    rows.sort(key=lambda r: (PYTHIA_LADDERS.index(r[0]), r[1], BENCHMARKS.index(r[2])))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(lmeval.EXTRACT_COLUMNS)
    writer.writerows(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "zero_shot.csv").write_text(text.getvalue(), encoding="utf-8")
    (args.out / "SOURCE.md").write_text(source_md(tree, len(rows)), encoding="utf-8")
    print(f"{len(rows)} rows of {len(PYTHIA_LADDERS)} ladders from {tree.commit[:7]} -> {args.out}")


if __name__ == "__main__":
    main()
