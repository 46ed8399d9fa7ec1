"""What a notebook shows its reader besides figures: the recipe drawn from the profile, a rendered training example,
an evaluation prompt in each format, predictions against gold, and the numbers behind a figure.

Every number a notebook states comes from here or from the profile, so that the prose cannot drift from the run: a
profile that trains 8 epochs says 8.
"""

from __future__ import annotations

import textwrap

import pandas as pd

from . import stats
from .config.profiles import FineTune, Profile, runs_models
from .data import tasks
from .study import plan

SNIPPET = 600  # characters of a long text shown before "…"


def _read_only(profile: Profile, what: str) -> str | None:
    """Why a profile that reads its results (the release, lm-eval output) shows no `what`: its models never saw this
    machine's data, and its datasets are the hub's (None for a profile that runs its models)."""
    if runs_models(profile):
        return None
    return (f"*No {what} shown: profile `{profile.name}` reads its results ({profile.results_source}) and runs no "
            "model here, so its datasets are not loaded; the offline `tiny` profile shows them.*")


def _clip(text: str, limit: int = SNIPPET) -> str:
    return text if len(text) <= limit else text[: limit // 2] + f"\n… ({len(text) - limit} characters) …\n" + \
        text[-limit // 2:]


def fine_tunes(profile: Profile, kind: str) -> list[FineTune]:
    """One fine-tuning run per task (kind 'sft') or the instruction tuning ('instruction'), at the first seed: what
    every rung of the ladder is fine-tuned with (plan.fine_tunes)."""
    if kind not in ("sft", "instruction"):
        raise ValueError(f"kind must be 'sft' or 'instruction', got {kind!r}")
    sources = profile.tasks if kind == "sft" else (profile.instruction,)
    return [plan.fine_tunes(profile, source)[0] for source in sources]


def recipe(profile: Profile, kind: str = "sft") -> pd.DataFrame:
    """The fine-tuning recipe as a table, one row per task, every value read from the profile."""
    seeds = list(profile.seeds) if profile.seeds else None
    rows = []
    for run in fine_tunes(profile, kind):
        t = run.train
        rows.append({"fine-tune": run.name, "training set": run.train_set,
                     "examples": run.n_train if run.n_train is not None else f"{run.fraction:.0%} of the mixture",
                     "epochs": t.epochs, "learning rate": t.lr, "effective batch": t.batch_size,
                     "micro-batch": t.micro_batch_size, "warm-up": f"{t.warmup_ratio:.0%}",
                     "weight decay": t.weight_decay, "max length": t.max_length, "clipping": t.max_grad_norm or "none",
                     "loss": t.loss_normalization, "dtype": t.dtype,
                     "method": ", ".join(profile.methods), "seeds": ", ".join(map(str, seeds or [t.seed]))})
    return pd.DataFrame(rows).set_index("fine-tune")


def evaluation(profile: Profile) -> pd.DataFrame:
    """How every model is scored, from the profile: shots, formats, items per set, generation length, context."""
    return pd.DataFrame([
        ("in-context demos (shots)", profile.shots),
        ("prompt formats", ", ".join(profile.formats)),
        ("items per evaluation set", profile.eval_limit if profile.eval_limit is not None else "the whole set"),
        ("new tokens generated at most", profile.max_new_tokens),
        ("context (tokens; longer prompts lose their oldest demo text)", profile.max_length),
        ("evaluation dtype", profile.eval_dtype),
    ], columns=["setting", "value"]).set_index("setting")


def training_example(profile: Profile, name: str, index: int = 0) -> str:
    """Markdown: one training example of a task (or the instruction mixture) exactly as the training loop gets it;
    the loss is taken on the completion (or the assistant turns) only."""
    from .study import jobs

    why = _read_only(profile, "training example")
    if why:
        return why
    run = next((r for kind in ("sft", "instruction") for r in fine_tunes(profile, kind) if r.name == name), None)
    if run is None:
        known = [r.name for kind in ("sft", "instruction") for r in fine_tunes(profile, kind)]
        raise ValueError(f"no fine-tune {name!r} in profile {profile.name!r}; fine-tunes: {known}")
    example = jobs.train_examples(profile, run)[index]
    if "messages" in example:
        turns = "\n".join(f"<|{m['role']}|>\n{_clip(m['content'])}" for m in example["messages"])
        return (f"**{name}**, training example {index} of {run.n_train} (chat turns; the loss is taken on the "
                f"assistant turns):\n\n```text\n{turns}\n```")
    return (f"**{name}**, training example {index} of {run.n_train} (`{run.train_set}`, rendered in the default "
            "template; the loss is taken on the completion only):\n\n"
            f"```text\n{_clip(example['prompt'])}\n```\ncompletion: `{example['completion']!r}`")


def eval_prompts(profile: Profile, eval_set: str, item: int | None = None) -> str:
    """Markdown: one evaluation item's prompt in every format the set has (of the profile's formats) — its query as
    the model sees it after the demos — and, once, the demos of the default format."""
    from .models import evaluate
    from .study import jobs

    why = _read_only(profile, f"prompt of {eval_set}")
    if why:
        return why
    dataset = tasks.get(eval_set)
    examples = jobs.eval_examples(profile, eval_set)
    item = profile.shots if item is None else item  # the first item that is not also a demo
    formats = [f for f in profile.formats if f in dataset.templates]
    example = examples[item]
    gold = example["choices"][example["gold"]] if dataset.kind == "multiple_choice" else example["target"]
    parts = [f"**{eval_set}** ({dataset.kind}), item {item} of {len(examples)}: {profile.shots}-shot, the first "
             f"{profile.shots} items are the demos; gold `{gold!r}`"
             + (f" among the choices {example['choices']}" if dataset.kind == "multiple_choice" else "")]
    if profile.shots:
        demos = evaluate.kshot_demos(dataset, examples, formats[0], profile.shots)
        parts.append(f"the demos ({formats[0]} format), {len(demos)} characters:\n\n```text\n{_clip(demos)}\n```")
    for fmt in formats:
        parts.append(f"the query, {fmt} format:\n\n```text\n{_clip(tasks.render(dataset, example, fmt))}\n```")
    return "\n\n".join(parts)


def prompts(profile: Profile, eval_sets=(), training=()) -> str:
    """Markdown: what the model sees — a training example of each fine-tune in `training`, then an item of each set
    in `eval_sets` in every format (one note instead where the profile reads its results)."""
    why = _read_only(profile, "prompt or training example")
    if why:
        return why
    return "\n\n".join([*(training_example(profile, name) for name in training),
                          *(eval_prompts(profile, s) for s in eval_sets)])


def predictions(df: pd.DataFrame, fine_tune: str, eval_set: str, *, ckpt: str | None = None, fmt: str = "default",
                n: int = 6, profile: Profile | None = None) -> pd.DataFrame:
    """A sample of one model's predictions against gold (a results frame with items: pipeline.load_frame(...,
    items=True)), the last checkpoint of the ladder unless `ckpt` is given; the item's score beside each. With the
    profile, a multiple-choice set's gold and chosen indices are shown with their choice's text."""
    rows = df[(df["fine_tune"] == fine_tune) & (df["eval_set"] == eval_set) & (df["format"] == fmt)]
    if ckpt is not None:
        rows = rows[rows["ckpt"] == ckpt]
    if rows.empty or "predictions" not in rows.columns:
        return pd.DataFrame(columns=["item", "gold", "prediction", "score"])
    row = rows.sort_values("step").iloc[-1]
    preds, refs, scores = row["predictions"], row["references"], row["scores"]
    if preds is None or refs is None:
        return pd.DataFrame(columns=["item", "gold", "prediction", "score"])
    if profile is not None and tasks.get(eval_set).kind == "multiple_choice":
        from .study import jobs

        choices = [ex["choices"] for ex in jobs.eval_examples(profile, eval_set)]

        def text(i, index):
            try:
                return f"{int(index)}: {choices[i][int(index)].strip()}"
            except (ValueError, IndexError, TypeError):
                return str(index)

        refs, preds = [text(i, r) for i, r in enumerate(refs)], [text(i, p) for i, p in enumerate(preds)]
    out = pd.DataFrame({"item": range(len(preds)), "gold": [textwrap.shorten(str(r), 120) for r in refs],
                        "prediction": [textwrap.shorten(str(p), 120) or "(empty)" for p in preds],
                        "score": list(scores) if scores is not None else None})
    out.attrs["caption"] = f"{fine_tune} model at {row['ckpt']} on {eval_set} ({fmt} format): {row['metric']}"
    return out.head(n).set_index("item")


def _pivot(study, pairs, index: list[str], fmt: str | None) -> pd.DataFrame:
    """Cell scores over the ladder (columns: checkpoints in ladder order; training seeds averaged) of the
    (fine_tune, eval_set) `pairs` (all where None), in one format or (fmt None) every format."""
    cells = study.cells.rows
    if fmt is not None:
        cells = cells[cells["format"] == fmt]
    if pairs is not None:
        wanted = set(pairs)
        cells = cells[[pair in wanted for pair in zip(cells["fine_tune"], cells["eval_set"])]]
    order = list(dict.fromkeys(cells.sort_values("step")["ckpt"]))
    table = cells.pivot_table(index=index, columns="ckpt", values="performance", aggfunc="mean")
    return table[[c for c in order if c in table.columns]].round(3)


def numbers(study, pairs=None, fmt: str = "default") -> pd.DataFrame:
    """The numbers behind a line figure over the ladder: each cell's score (rows: fine-tune and set), read from the
    same stats.Study the figure reads. `pairs`: the (fine_tune, eval_set) rows to keep (default: all)."""
    return _pivot(study, pairs, ["fine_tune", "eval_set"], fmt)


def by_format(study, pairs) -> pd.DataFrame:
    """The format figure's numbers: each (fine_tune, eval_set) of `pairs` in every prompt format, over the ladder."""
    return _pivot(study, pairs, ["fine_tune", "eval_set", "format"], None)


def matrix(study, fine_tunes, eval_sets, ckpt: str | None = None, fmt: str = "default") -> pd.DataFrame:
    """The cross-task matrix at one checkpoint (the last of the ladder unless named): rows the models (base and
    each fine-tune), columns the sets, default format."""
    cells = study.cells.rows
    cells = cells[(cells["format"] == fmt) & cells["fine_tune"].isin(fine_tunes) & cells["eval_set"].isin(eval_sets)]
    if cells.empty:
        return pd.DataFrame(index=list(fine_tunes), columns=list(eval_sets))
    ckpt = ckpt or cells.sort_values("step")["ckpt"].iloc[-1]
    at = cells[cells["ckpt"] == ckpt]
    table = at.pivot_table(index="fine_tune", columns="eval_set", values="performance", aggfunc="mean")
    table = table.reindex(index=[f for f in fine_tunes if f in table.index],
                          columns=[s for s in eval_sets if s in table.columns]).round(3)
    table.columns.name = f"eval set (at {ckpt})"
    return table


def sets(profile: Profile) -> pd.DataFrame:
    """Each task's evaluation sets, from the profile: its training set, in-domain sets (the primary one first) and
    out-of-domain sets."""
    return pd.DataFrame([{"task": t.name, "family": t.family, "kind": t.kind, "trained on": t.train_set,
                          "in-domain": ", ".join(t.in_domain), "out-of-domain": ", ".join(t.ood) or "none"}
                         for t in profile.tasks]).set_index("task")


def release_table(stem: str) -> pd.DataFrame:
    """A notebook's table (by its stem in the stage registry, e.g. 'mrc_cross_task') computed from the authors'
    released numbers, for a notebook to state the paper's values beside its own."""
    from .config.profiles import get_profile
    from .study import frames, stages

    maker = next((m for stage in stages.STAGES for name, m in stage.tables.items() if name == stem), None)
    if maker is None:
        raise ValueError(f"no stage writes a table {stem!r}")
    reference = get_profile("paper-reference")
    return stages.resolve(maker)(stats.Study(frames.load_frame(reference, items=True), reference))


def sensitivity_settings(profile: Profile) -> str:
    """One line: the sensitivity probe's settings, from the profile."""
    probe = profile.sensitivity
    return (f"Noise `{probe.scaling}`, magnitudes {', '.join(map(str, probe.magnitudes))}, {probe.seeds} noise seeds, "
            f"{probe.tokens} held-out tokens in blocks of {probe.block}; {stats.CONFIDENCE:.0%} intervals.")


def sensitivity(rows: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """The mean held-out-loss rise per (checkpoint, scaling, magnitude) with its interval (stats.sensitivity_table)."""
    return stats.sensitivity_table(rows, profile).round(4)


def best_probes(rows: pd.DataFrame) -> pd.DataFrame:
    """The best layer's probe per (checkpoint, task) (stats.best_probe_rows), with chance, majority and the budget."""
    best = stats.best_probe_rows(rows)
    return best[["ckpt", "task", "layer", "accuracy", "chance", "majority", "n_train", "n_test", "C"]].round(3)


def scoring(profile: Profile) -> str:
    """Markdown: how every model of the profile is scored (the paper's rules, with the profile's numbers)."""
    shots = profile.shots
    demos = (f"{shots}-shot: the demos are the first {shots} items of each set itself, as in the paper, and are scored "
             "too" if shots else "0-shot: no demos")
    items = f"the first {profile.eval_limit} items of each set" if profile.eval_limit is not None else "every item"
    return (f"Every model is scored alike ({demos}; {items}; prompts cut to {profile.max_length} tokens by dropping "
            "the oldest demo text). Classification sets: next-token argmax over the label words. Generation sets: "
            f"ROUGE-L F1 of greedy outputs of at most {profile.max_new_tokens} new tokens. Benchmarks (multiple "
            "choice): rank classification by each choice's log-likelihood, normalised as the set's metric says.")


def verdict_guide() -> str:
    """Markdown: how to read the verdict tables every notebook ends with (numbers from claims and stats)."""
    from .verdicts.claims import POWER

    level, power = (f"{x:.0%}".replace("%", " %") for x in (stats.CONFIDENCE, POWER))
    return (
        "The claims of both papers that these figures bear on, judged on this run's own records. A verdict on one "
        f"statistic rests on its {level} interval, resampling the units the claim ranges over (task pairs, sets, "
        "tasks, checkpoints), then items, then training seeds; a claim about *every* unit (or *some* unit) is judged "
        "unit by unit, and its row names the deciding unit. Beside each verdict: the measurement-only interval (the "
        "paper's own bootstrap), whether the verdict survives leaving out any one unit and the sentence's other "
        "readings, and the power of this run's design (the smallest true effect it decides "
        f"{power} of the time) next to the effect in the authors' release. Degenerate "
        "cells (constant predictors on the side where they make the statistic measure something else) make a "
        "verdict *uninformative*; one that a named defect decides is counted apart. The bands on the line figures "
        f"above are each cell's {level} interval from the same resamples; the bar figures draw the interval of the "
        "very statistic a verdict judges. Definitions: `amuro_utils/verdicts/claims.py`, `amuro_utils/stats/`; every claim, "
        "and each rule's measured error rate at its boundary: `figures/<profile>/claims.md`, `calibration.md`.")
