"""Which cells the paper's analyses compare (PROTOCOL §5, §6.3): the cross-task and OOD pairs, the learned-in-PT/FT
groups of Table 5, and how to read a score honestly (chance, the majority class, constant predictors).

A pair is (eval_set, fine_tune): the fine-tuned model's row on eval_set is compared with the base checkpoint's row
on the same eval_set. Every statistic over these pairs (changes, group means, Table 5, mean relative change, OOD
groups, format gaps) is computed once, in amuro_utils.stats.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..config.profiles import Profile
from ..store.results import constant_predictor, item_label, metric_kind, model_cells  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

# The paper's manual split (PROTOCOL §5; no threshold in code). Names are registry eval sets: `sciq_mc` is
# catwalk's multiple-choice SciQ, scored for the instruction-tuned model. The release's table lists SciQ twice,
# so the "Learned in PT" group has 6 pairs and SciQ weighs double; kept for fidelity.
LEARNED_IN_PT = ("sciq_mc", "hellaswag", "arc_challenge", "arc_easy", "openbookqa", "sciq_mc")
LEARNED_IN_FT = ("mnli_matched", "paws", "xsum", "mnli_mismatched", "xlsum", "socialiqa", "boolq")
GROUP_PT, GROUP_FT = "Learned in PT", "Learned in FT"
# Fig. 7 bar names per task family
OOD_GROUP_NAMES = {"nli": "NLI", "summarization": "Summary Generation", "question_generation": "Question Generation",
                   "paraphrase": "Paraphrase Detection"}


# ---------------------------------------------------------------------------------------------------------------
# pairs from a profile


def class_to_gen_pairs(profile: Profile) -> list[tuple[str, str]]:
    """(primary ID set of each generation task, each classification task): Fig. 6 Class→Gen."""
    return [(g.primary, c.name) for c in _tasks(profile, "classification") for g in _tasks(profile, "generation")]


def gen_to_class_pairs(profile: Profile) -> list[tuple[str, str]]:
    """(primary ID set of each classification task, each generation task): Fig. 6 Gen→Class."""
    return [(c.primary, g.name) for g in _tasks(profile, "generation") for c in _tasks(profile, "classification")]


def ood_pairs(profile: Profile) -> list[tuple[str, str]]:
    """(each OOD set of a task, that task): Fig. 7."""
    return [pair for group in ood_groups(profile).values() for pair in group]


def ood_groups(profile: Profile) -> dict[str, list[tuple[str, str]]]:
    """OOD pairs grouped by task family, named as in Fig. 7 (NLI, Summary, Question Generation, Paraphrase)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for task in profile.tasks:
        if task.ood:
            name = OOD_GROUP_NAMES.get(task.family, task.family)
            groups.setdefault(name, []).extend((s, task.name) for s in task.ood)
    return groups


def learned_groups(profile: Profile) -> dict[str, list[tuple[str, str]]]:
    """Table 5 / Fig. 3 groups: {"Learned in PT": pairs, "Learned in FT": pairs} from the manual split.

    The lists are LEARNED_IN_PT / LEARNED_IN_FT unless the profile sets `learned_in_pt` / `learned_in_ft`.
    A benchmark is paired with the instruction-tuned model, an SFT set with the task that
    has it in domain. Default-list sets this profile does not evaluate are dropped (logged); a profile's own list
    must name only sets it evaluates.
    """
    groups = {}
    for group, key, default in ((GROUP_PT, "learned_in_pt", LEARNED_IN_PT), (GROUP_FT, "learned_in_ft", LEARNED_IN_FT)):
        own = getattr(profile, key) is not None
        names = getattr(profile, key) if own else default
        pairs, dropped = [], []
        for eval_set in names:
            fine_tune = _trained_for(profile, eval_set)
            if fine_tune is None:
                if own:
                    raise ValueError(f"profile {profile.name!r} {key} names {eval_set!r}, which none of its "
                                     f"tasks has in domain and which is not one of its instruction benchmarks")
                dropped.append(eval_set)
            else:
                pairs.append((eval_set, fine_tune))
        if dropped:
            log.info("%s: profile %r does not evaluate %s; left out of the group", group, profile.name, dropped)
        groups[group] = pairs
    return groups


def _tasks(profile: Profile, kind: str):
    return [t for t in profile.tasks if t.kind == kind]


def _trained_for(profile: Profile, eval_set: str) -> str | None:
    """The fine_tune whose 'learning' eval_set measures: instruction tuning for its benchmarks, else the SFT task."""
    if eval_set in (*profile.instruction.benchmarks, *profile.instruction.llmbar):
        return profile.instruction.name
    return next((t.name for t in profile.tasks if eval_set in t.in_domain), None)


# ---------------------------------------------------------------------------------------------------------------
# reading a score honestly: chance, the majority class, constant predictors

# Majority-class shares of the release's test sets that are documented without per-item records: PAWS test
# (PROTOCOL §6.3: base PAWS sits at the majority class, .558) and the SetFit QQP/STS-B test splits, whose gold
# labels are all "no" (PROTOCOL §2.2). Used only for rows of the authors' release (source "paper").
RELEASE_MAJORITY_SHARE = {"paws": 0.558, "qqp": 1.0, "stsb": 1.0}


def majority_share(references, kind: str | None, strip_order=()) -> float | None:
    """Share of the evaluated items whose gold label is the most common one (what a constant predictor of that
    label scores); None for generation or without references. Multiple choice: the gold choice position."""
    if kind not in ("classification", "multiple_choice") or not references:
        return None
    labels = pd.Series([item_label(r, strip_order) for r in references])
    return float(labels.value_counts().iloc[0] / len(labels))


def chance_level(dataset, examples=None) -> float | None:
    """Expected accuracy of a uniform random guess over the labels a prediction can take; None for generation.

    Classification: 1 / number of distinct labels (strip_order labels, else the distinct force words): NLI 1/3
    (also for binary RTE, whose predictions may say "contradiction"), paraphrase 1/2, LLMBar 1/2. Multiple choice:
    the mean of 1 / (number of choices) over `examples` (ARC has a few 3- and 5-choice items); None without them.
    """
    if dataset.kind == "classification":
        labels = {label for _, label in dataset.strip_order} or {w.strip() for w in dataset.force_words}
        return 1.0 / len(labels) if labels else None
    if dataset.kind == "multiple_choice" and examples:
        return float(np.mean([1.0 / len(ex["choices"]) for ex in examples]))
    return None


def cross_task_groups(profile: Profile) -> dict[str, list]:
    """Fig. 6's two directions: {'Class→Gen': pairs, 'Gen→Class': pairs}."""
    return {"Class→Gen": class_to_gen_pairs(profile), "Gen→Class": gen_to_class_pairs(profile)}


def forgetting_groups(profile: Profile) -> dict[str, list]:
    """Claim A3's groups, every group of pairs where a model is scored off its own task or domain: Class→Gen,
    Gen→Class (Fig. 6) and each OOD group of Fig. 7 ("OOD NLI", …)."""
    groups = cross_task_groups(profile)
    groups.update({f"OOD {k}": v for k, v in ood_groups(profile).items()})
    return groups
