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
# study, scored as the cell after the set-up says. We also run the probe of Springer et al.: add Gaussian noise to
# every weight and measure how much the held-out pre-training loss rises — later checkpoints are expected to be
# more sensitive.

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

from amuro_utils import pipeline, show

prof = pipeline.setup(profile, results_source, overrides)
print(prof.description)
display(show.evaluation(prof))
display(Markdown(show.scoring(prof)))

# %% [markdown]
# ## What the model sees
# One item of each task's primary set in the default format, after its demos.

# %%
display(Markdown(show.prompts(prof, [t.primary for t in prof.tasks])))

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
print(f"{pipeline.run_base(prof, ckpt=ckpt)} new evaluation records")
records = pipeline.load_frame(prof, items=True, kinds=("base",))
for plan_ in prof.tasks:  # the last checkpoint's outputs against gold on each task's primary set
    sample = show.predictions(records, "base", plan_.primary, profile=prof)
    if len(sample):
        display(Markdown(f"*{sample.attrs['caption']}*"), sample)

# %% [markdown]
# ## Progressive sensitivity (Springer et al., 2025)
# Gaussian noise of a fixed magnitude is added to every weight — by default, as Springer et al. (§3.3) define it,
# γ times the standard deviation each tensor was initialised with — for several noise seeds, and the loss on
# held-out passages (never trained on) is compared with the unperturbed checkpoint's, block by block. The table
# gives the mean loss rise Δ with its interval (bootstrap over noise seeds and text blocks); the claim is that Δ
# grows along the ladder.

# %%
display(Markdown(show.sensitivity_settings(prof)))
sens = pipeline.sensitivity(prof, ckpt=ckpt, enabled=sensitivity)
show.sensitivity(sens, prof)

# %% [markdown]
# ## What the base model already knows: linear probes (beyond the paper)
# For each classification task, a cross-validated logistic regression is fit on the frozen hidden states (the
# prompt's last token, every layer) of a fixed budget of the task's training rows and scored on held-out rows: a
# probe above chance where few-shot prompting sits at chance is knowledge prompting does not surface. The table gives
# the best layer per (checkpoint, task); the `beyond` notebook draws and judges them (question P1).

# %%
probe_rows = pipeline.probes(prof, ckpt=ckpt, enabled=probes)
if len(probe_rows):
    display(show.best_probes(probe_rows))

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
# ladder) / noise. Below one, a set moves less over the whole of pre-training than one score's own noise; even with
# no signal at all, noise alone gives an SNR of about `no_signal_snr` (the expected range of that many noisy
# scores), so only an SNR well above that column says the ladder moved the set. Rows: the base models, format
# default, in the paper's metric and in each continuous reading (`amuro_utils/stats/signal.py`).

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

# %%
display(Markdown(show.verdict_guide()))
display(Markdown(pipeline.verdicts(prof, "pretrain_probe", drawn)))
