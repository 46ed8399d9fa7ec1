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
# # Supervised fine-tuning across the ladder (Figure 3, Table 5)
#
# **Question.** Does a checkpoint that pre-trained longer also fine-tune better — and for which tasks?
#
# **Method.** Each checkpoint is fine-tuned on each of the four tasks (NLI, paraphrase detection, summarisation,
# question generation) with the paper's recipe (completion-only loss with EOS, AdamW, linear schedule with 3 %
# warmup, effective batch 8; the profile holds the exact numbers). Every fine-tuned model then runs its whole
# evaluation plan once — in-domain and out-of-domain sets in every prompt format, and the other tasks' sets — so
# that the format, transfer and ood notebooks only analyse recorded results. Base and fine-tuned models are scored
# identically (4-shot).

# %% tags=["parameters"]
profile: str = "tiny"  # tiny (offline CPU demo), smoke (CI), paper (OLMo-1B on a GPU), paper-reference (released numbers), or a profile file (.toml/.json)
overrides: str = ""  # profile fields to change, written as ./run_all.sh --set takes them, ';' between (README: Profiles)
ckpt: str = "all"  # all, or one checkpoint of the ladder: step424000, 424000, main, or a hub branch name
task: str = "all"  # all, or one task of the profile: mnli, paws, xsum, socialiqa (tiny: qqp for paws)
results_source: str = ""  # empty: the profile default; run: records of this project; paper: the released numbers
overlay_paper: bool = False  # draw the paper's released curves (dotted) beside this run's
make_figures: bool = True  # False for per-checkpoint cluster jobs; a final job with ckpt all draws the figures

# %%
from IPython.display import Markdown, display

from amuro_utils import pipeline

prof = pipeline.setup(profile, results_source, overrides)
print(prof.description)

# %% [markdown]
# ## Fine-tune and evaluate
# A job whose records are all present is skipped; an interrupted one resumes from its records (a finished
# fine-tuned model is kept on disk until its evaluation plan is complete). Beyond the paper, with the profile's
# `dynamics` switch each fine-tuning is also evaluated at fractions of its optimizer steps (the loss and the order of
# training unchanged), and every training record holds its zero-step loss; the `beyond` notebook reads both.

# %%
pipeline.run_sft(prof, ckpt, task)

# %% [markdown]
# ## Figure 3, Table 5, the training-loss curves and forgetting
# `figT_sft_training_loss` shows whether each fine-tuning fitted its training set (loss per optimizer step), and
# `figS3_forgetting` how much it raised the loss on held-out pre-training text (Springer et al.'s forgetting).
# `fig3_sft_answer_text` and `fig3_sft_discrimination` draw Fig. 3 on the continuous readings beside the paper's
# metric (as in `pretrain_probe`), and `snr_fine_tuned` gives each fine-tuned (set, metric) series' signal-to-noise
# over the ladder (Heineman et al. 2025; noise: each score's item standard error and, with several training seeds,
# their spread).

# %%
drawn = pipeline.draw(prof, "sft", overlay_paper=overlay_paper, enabled=make_figures)
display(*drawn.tables.values())

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
display(Markdown(pipeline.verdicts(prof, "sft")))
