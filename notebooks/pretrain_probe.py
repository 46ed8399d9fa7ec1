# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,jupytext
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # What does pre-training alone teach? (Figure 2)
#
# **Question.** As pre-training goes on, which abilities does the *base* model pick up by itself, and which stay
# flat until it is fine-tuned?
#
# **Method.** Every checkpoint of the ladder is evaluated, without any fine-tuning, on every evaluation set of the
# study (4-shot; demos = the first four items of each set, as in the paper). Classification sets are scored by
# next-token argmax over the label words, generation sets by ROUGE-L F1 of greedy 60-token outputs, benchmarks by
# rank classification. We also run the probe of Springer et al. (2025): add Gaussian noise to every weight and
# measure how much the held-out pre-training loss rises — later checkpoints are expected to be more sensitive.

# %% tags=["parameters"]
profile: str = "tiny"  # tiny (offline CPU demo), smoke (CI), paper (OLMo-1B on a GPU), paper-reference (released numbers), or a profile file (.toml/.json)
overrides: str = ""  # profile fields to change, written as ./run_all.sh --set takes them, ';' between (README: Profiles)
ckpt: str = "all"  # all, or one checkpoint of the ladder: step424000, 424000, main, or a hub branch name
results_source: str = ""  # empty: the profile default; run: records of this project; paper: the released numbers
overlay_paper: bool = False  # draw the paper's released curves (dotted) beside this run's
sensitivity: bool = True  # run the Springer et al. Gaussian-perturbation probe on each checkpoint
probes: bool = True  # fit linear probes on each checkpoint's hidden states (beyond the paper; profile switch: probes)
make_figures: bool = True  # False for per-checkpoint cluster jobs; a final job with ckpt all draws the figures

# %%
import pandas as pd
from IPython.display import Markdown, display

from amuro_utils import pipeline, stats

prof = pipeline.setup(profile, results_source, overrides)
print(prof.description)

# %% [markdown]
# ## The checkpoint ladder
# For the `paper` profile the ladder is OLMo-1B-hf's hub branches. The offline `tiny` profile pre-trains its own
# tiny OLMo-architecture model on real English text (never on evaluation items) and keeps checkpoints along the
# way, stored as hub branches of a local Hugging Face cache, so that both profiles load checkpoints through the
# same `from_pretrained(repo, revision=branch)` call.

# %%
display(Markdown(pipeline.ladder_report(prof)))

# %% [markdown]
# ## Base checkpoints on every evaluation set

# %%
print(f"{pipeline.run_base(prof, ckpt)} new evaluation records")

# %% [markdown]
# ## Progressive sensitivity (Springer et al., 2025)
# Gaussian noise of a fixed magnitude is added to every weight — by default, as Springer et al. (§3.3) define it,
# γ times the standard deviation each tensor was initialised with — for several noise seeds, and the loss on
# held-out passages (never trained on) is compared with the unperturbed checkpoint's, block by block. The table
# gives the mean loss rise Δ with its 95 % CI (bootstrap over noise seeds and text blocks); the claim is that Δ
# grows along the ladder.

# %%
sens = pipeline.sensitivity(prof, ckpt, enabled=sensitivity)
stats.sensitivity_table(sens, prof).round(4)

# %% [markdown]
# ## What the base model already knows: linear probes (beyond the paper)
# For each classification task, a cross-validated logistic regression is fit on the frozen hidden states (the
# prompt's last token, every layer) of a fixed budget of the task's training rows and scored on held-out rows: a
# probe above chance where 4-shot prompting sits at chance is knowledge prompting does not surface. The table gives
# the best layer per (checkpoint, task); the `beyond` notebook draws and judges them (question P1).

# %%
probe_rows = pipeline.probes(prof, ckpt, enabled=probes)
if len(probe_rows):
    best = probe_rows.loc[probe_rows.groupby(["ckpt", "task"])["accuracy"].idxmax()]
    display(best[["ckpt", "task", "layer", "accuracy", "chance", "majority", "n_train", "n_test", "C"]].round(3))

# %% [markdown]
# ## Figure 2
# Fig. 2 draws each set in the paper's metric (accuracy, ROUGE-L). Beside it, two figures draw continuous readings
# that every record also holds per item, each named for what it measures: `fig2_pretrain_probe_answer_text`, how
# well the model predicts the gold answer's *text* (bits per byte of the gold choice or reference, lower = better;
# the log-probability of the gold label word), and `fig2_pretrain_probe_discrimination`, how much it prefers the
# gold answer to the others (its share of the probability). A small model can learn the first long before the
# second; the paper's verdicts read the paper's metric only.

# %%
drawn = pipeline.draw(prof, "pretrain_probe", overlay_paper=overlay_paper, enabled=make_figures)
display(drawn)

# %% [markdown]
# ## Which sets can tell the checkpoints apart: signal and noise
# Heineman et al. (2025, "Signal and Noise") measure a benchmark's *signal* as the relative dispersion of its scores
# over models, max − min over the mean, and its *noise* as the relative standard deviation of one model's scores
# over its last training checkpoints; their ratio (SNR) predicts whether the benchmark can rank models. On a ladder
# the spread across checkpoints is the signal itself, so here the noise is the standard error each score carries
# (its items resampled; the spread across training seeds where there are several), and SNR = (max − min over the
# ladder) / noise. Below 1, a set moves less over the whole of pre-training than one score's own noise; even with
# no signal at all, noise alone gives an SNR of about `no_signal_snr` (the expected range of that many noisy
# scores), so only an SNR well above that column says the ladder moved the set. Rows: the base models, format
# default, in the paper's metric and in each continuous reading (`amuro_utils/signal.py`).

# %%
if "snr_base" in drawn.tables:
    snr = drawn.tables["snr_base"]
    shown = ["eval_set", "metric", "measures", "mean", "dispersion", "noise", "snr", "no_signal_snr", "snr_below_1"]
    with pd.option_context("display.max_rows", None):
        display(snr[shown].round(3))
    below = snr[snr["snr_below_1"]]
    print(f"{len(below)} of {len(snr)} (set, metric) series have SNR < 1: "
          + ", ".join(f"{r.eval_set} ({r.metric})" for r in below.itertuples()))

# %% [markdown]
# ## What this run shows
# The claims of both papers that these figures bear on, judged on this run's own records. A verdict on one
# statistic rests on its 95 % interval, resampling the units the claim ranges over (task pairs, sets, tasks,
# checkpoints), then items, then training seeds; a claim about *every* unit (or *some* unit) is judged unit by unit,
# and its row names the deciding unit. Beside each verdict: the measurement-only interval (the paper's own
# bootstrap), whether the verdict survives leaving out any one unit and the sentence's other readings, and the power
# of this run's design (the smallest true effect it decides 80 % of the time) next to the effect in the authors'
# release. Degenerate cells (constant predictors on the side where they make the statistic measure something else)
# make a verdict *uninformative*; one that a named defect decides is counted apart. The bands on the line figures
# above are each cell's 95 % interval from the same resamples; the bar figures draw the interval of the very
# statistic a verdict judges. Definitions: `amuro_utils/claims.py`, `amuro_utils/stats.py`; every claim, and each
# rule's measured error rate at its boundary: `figures/<profile>/claims.md`, `calibration.md`.

# %%
display(Markdown(pipeline.verdicts(prof, "pretrain_probe")))
