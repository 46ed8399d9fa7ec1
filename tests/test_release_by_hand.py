"""Release verdicts recomputed by hand: straight from the authors' CSVs (by model_id, no amuro_utils parsing), with
an independent bootstrap written here, compared with the scorecard's values and verdicts.

The values must agree to 1e-12; the hand bootstrap (its own seed and scheme: units drawn with numpy's choice, cells
drawn from N(performance, std²) or N(p, p(1−p)/n)) must reach the same verdict for claims whose interval is clear
of the threshold."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from amuro_utils import claims
from amuro_utils.paths import DATA_DIR
from amuro_utils.profiles import PAPER_REFERENCE
from amuro_utils.results import load_paper_results

STEPS = {"1000": 1000, "18000": 18000, "342000": 342000, "424000": 424000, "505000": 505000, "592000": 592000,
         "738000": 738000, "main": 738020}
LR = {"xsum": "2e-7", "socialiqa": "2e-6", "mnli": "2e-6", "paws": "2e-6"}
VALIDATION_N = {"arc_easy": 570, "arc_challenge": 299, "boolq": 3270, "hellaswag": 10042, "openbookqa": 500,
                "sciq": 1000}
B = 4000


@pytest.fixture(scope="module")
def csv():
    """(model_id, eval dataset) -> (performance, std or NaN) over both released tables."""
    out = {}
    for name in ("all_perf_table.csv", "official_eval_table.csv"):
        raw = pd.read_csv(DATA_DIR / "paper_results" / name)
        std = raw["std"] if "std" in raw else [math.nan] * len(raw)
        for m, e, p, s in zip(raw["model_id"], raw["eval dataset"], raw["Performance"], std):
            out[(m, e, name)] = (p, s)
    return out


@pytest.fixture(scope="module")
def scorecard():
    return claims.evaluate_all(load_paper_results(), PAPER_REFERENCE).set_index("id")


def base_cell(csv, ckpt, eval_ds):
    m = f"olmo1b_checkpoint-{ckpt}_original_hf_4shots" if ckpt != "main" else "olmo1b_original_hf_4shots"
    return csv[(m, eval_ds, "all_perf_table.csv")]


def tuned_cell(csv, ckpt, eval_ds, task):
    tag = f"ckpt{ckpt}" if ckpt != "main" else "main"
    return csv[(f"olmo1b_hf_{tag}_{task}_3epoch_{LR[task]}_4shots", eval_ds, "all_perf_table.csv")]


def official_cell(csv, ckpt, eval_ds, tuned=False):
    """A rank-classification cell (official_eval_table: no std; the binomial one from the validation size)."""
    if tuned:
        tag = f"ckpt{ckpt}" if ckpt != "main" else "main"
        p = csv[(f"olmo1b_hf_{tag}_tulu_5epoch_2e-6", eval_ds, "official_eval_table.csv")][0]
    else:
        p = csv[(f"checkpoint-{ckpt}" if ckpt != "main" else "olmo1b_original_hf", eval_ds,
                 "official_eval_table.csv")][0]
    return p, math.sqrt(p * (1 - p) / VALIDATION_N[eval_ds])


def draws(rng, cell):
    p, s = cell
    return p + s * rng.standard_normal(B)


def crossed_mean(rng, gains):
    """Bootstrap of the mean over a {(unit, ckpt): gain draws} table: units and checkpoints drawn with replacement
    (numpy choice), each drawn (unit, ckpt) at its own draw."""
    units = sorted({u for u, _ in gains})
    ckpts = list(STEPS)
    out = np.empty(B)
    for b in range(B):
        us, cs = rng.choice(units, len(units)), rng.choice(ckpts, len(ckpts))
        out[b] = np.mean([gains[(u, c)][b] for u in us for c in cs])
    return out


def ci(x):
    return np.percentile(x, [2.5, 97.5])


def fitted(values_by_ckpt):
    """The fitted change by hand: np.polyfit of score on log10(step) × the log10 span."""
    x = np.log10([STEPS[c] for c in values_by_ckpt])
    return np.polyfit(x, list(values_by_ckpt.values()), 1)[0] * (x.max() - x.min())


def test_b7_ood_groups_by_hand(csv, scorecard):
    rng = np.random.default_rng(2026)
    for part, task, sets, sign in (("B7a", "mnli", ("rte", "gpt3nli"), 1), ("B7b", "paws", ("qqp", "stsb"), -1)):
        gains, point = {}, []
        for e in sets:
            for c in STEPS:
                base, tuned = base_cell(csv, c, e), tuned_cell(csv, c, e, task)
                point.append(tuned[0] - base[0])
                gains[(e, c)] = draws(rng, tuned) - draws(rng, base)
        assert scorecard.loc[part, "value"] == pytest.approx(np.mean(point), abs=1e-12)
        low, high = ci(crossed_mean(rng, gains))
        assert (low > 0 if sign > 0 else high < 0)  # clear of 0 by hand …
        assert scorecard.loc[part, "judged"] == "supported"  # … and in the scorecard
        assert scorecard.loc[part, "ci_low"] == pytest.approx(low, abs=0.03)
        assert scorecard.loc[part, "ci_high"] == pytest.approx(high, abs=0.03)


def test_b6b_gen_to_class_by_hand(csv, scorecard):
    rng = np.random.default_rng(7)
    pairs = [("mnli_matched", "xsum"), ("paws", "xsum"), ("mnli_matched", "socialiqa"), ("paws", "socialiqa")]
    ratios, point = {}, []
    for e, t in pairs:
        for c in STEPS:
            base, tuned = base_cell(csv, c, e), tuned_cell(csv, c, e, t)
            point.append((tuned[0] - base[0]) / base[0])
            b = draws(rng, base)
            ratios[(e + t, c)] = (draws(rng, tuned) - b) / b
    assert scorecard.loc["B6b", "value"] == pytest.approx(100 * np.mean(point), abs=1e-10)
    low, high = 100 * ci(crossed_mean(rng, ratios))
    assert -claims.RELATIVE_MARGIN < low < high < claims.RELATIVE_MARGIN
    assert scorecard.loc["B6b", "judged"] == "supported"


def test_a2_learned_groups_by_hand(csv, scorecard):
    rng = np.random.default_rng(11)
    ft = {("mnli_matched", "mnli"): "sft", ("paws", "paws"): "sft", ("xsum", "xsum"): "sft",
          ("mnli_mismatched", "mnli"): "sft", ("xlsum", "xsum"): "sft", ("socialiqa", "socialiqa"): "sft",
          ("boolq", "tulu"): "it"}
    pt = ["sciq", "hellaswag", "arc_challenge", "arc_easy", "openbookqa", "sciq"]  # SciQ twice, as released

    def gain(e, t, kind, c):
        if kind == "it":
            base, tuned = official_cell(csv, c, e), official_cell(csv, c, e, tuned=True)
        else:
            base, tuned = base_cell(csv, c, e), tuned_cell(csv, c, e, t)
        return tuned[0] - base[0], draws(rng, tuned) - draws(rng, base)

    ft_gains = {(e + t, c): gain(e, t, k, c) for (e, t), k in ft.items() for c in STEPS}
    pt_gains = {(f"{e}#{i}", c): gain(e, "tulu", "it", c) for i, e in enumerate(pt) for c in STEPS}
    value = np.mean([v[0] for v in ft_gains.values()]) - np.mean([v[0] for v in pt_gains.values()])
    assert scorecard.loc["A2", "value"] == pytest.approx(value, abs=1e-12)
    diff = crossed_mean(rng, {k: v[1] for k, v in ft_gains.items()}) - \
        crossed_mean(rng, {k: v[1] for k, v in pt_gains.items()})
    assert ci(diff)[0] > 0 and scorecard.loc["A2", "judged"] == "supported"


def test_b1a_benchmarks_rise_by_hand(csv, scorecard):
    rng = np.random.default_rng(3)
    sets = ["sciq", "hellaswag", "arc_challenge", "arc_easy", "openbookqa"]
    cells = {e: {c: official_cell(csv, c, e) for c in STEPS} for e in sets}
    value = np.mean([fitted({c: p for c, (p, _) in cells[e].items()}) for e in sets])
    assert scorecard.loc["B1a", "value"] == pytest.approx(value, abs=1e-12)
    per_set = {e: np.array([fitted({c: draws(rng, cells[e][c])[b] for c in STEPS}) for b in range(400)])
               for e in sets}  # 400 draws of each set's fitted change
    means = [np.mean([per_set[e][b % 400] for e in rng.choice(sets, len(sets))]) for b in range(B)]
    assert ci(means)[0] > 0 and scorecard.loc["B1a", "judged"] == "supported"


def test_a1b_base_not_flat_by_hand(csv, scorecard):
    # the largest |fitted change| of the Learned-in-FT sets' base score: SocialIQa's, about 0.04 > the 0.02 margin
    sets = ["mnli_matched", "paws", "xsum", "mnli_mismatched", "xlsum", "socialiqa"]
    changes = {e: fitted({c: base_cell(csv, c, e)[0] for c in STEPS}) for e in sets}
    changes["boolq"] = fitted({c: official_cell(csv, c, "boolq")[0] for c in STEPS})
    worst = max(changes, key=lambda e: abs(changes[e]))
    assert worst == "socialiqa"
    assert scorecard.loc["A1b", "value"] == pytest.approx(abs(changes[worst]), abs=1e-12)
    rng = np.random.default_rng(5)
    draws_worst = [abs(fitted({c: draws(rng, base_cell(csv, c, "socialiqa"))[b] for c in STEPS})) for b in range(800)]
    assert np.percentile(draws_worst, 2.5) > claims.FLAT_MARGIN and scorecard.loc["A1b", "judged"] == "contradicted"


def test_b4c_earlier_checkpoints_do_not_gain_more_by_hand(csv, scorecard):
    # Table 5's "Learned in FT" row: raw gain at 1k and 18k below the later checkpoints' (B4c contradicted)
    pairs = [("mnli_matched", "mnli"), ("paws", "paws"), ("xsum", "xsum"), ("mnli_mismatched", "mnli"),
             ("xlsum", "xsum"), ("socialiqa", "socialiqa")]

    def group(c):
        gains = [tuned_cell(csv, c, e, t)[0] - base_cell(csv, c, e)[0] for e, t in pairs]
        gains.append(official_cell(csv, c, "boolq", tuned=True)[0] - official_cell(csv, c, "boolq")[0])
        return np.mean(gains)

    early, late = ["1000", "18000"], [c for c in STEPS if c not in ("1000", "18000")]
    value = np.mean([group(c) for c in early]) - np.mean([group(c) for c in late])
    assert scorecard.loc["B4c", "value"] == pytest.approx(value, abs=1e-12)
    assert value < -0.15 and scorecard.loc["B4c", "judged"] == "contradicted"
