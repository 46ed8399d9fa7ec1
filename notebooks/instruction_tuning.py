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
# # Instruction tuning across the ladder (Figure 4, LLMBar)
#
# **Question.** Does instruction tuning help every checkpoint equally, and does the final, longest-trained model
# gain the most? (Springer et al. 2025 report the 3T-token OLMo-1B doing *worse* after instruction tuning than
# its 2.3T-token checkpoint.)
#
# **Method.** Each checkpoint is tuned on the instruction mixture (TULU v2, 5 %, in the paper; Tulu chat format,
# loss on assistant turns only, 5 epochs) and scored, like its base, on ARC-Easy, ARC-Challenge, OpenBookQA,
# HellaSwag, BoolQ and SciQ by rank classification (4-shot, the task's primary metric), and on LLMBar
# (instruction following, next-token choice between outputs 1 and 2).

# %% tags=["parameters"]
profile: str = "tiny"  # tiny (offline CPU demo), smoke (CI), paper (OLMo-1B on a GPU), paper-reference (released numbers), or a profile file (.toml/.json)
overrides: str = ""  # profile fields to change, written as ./run_all.sh --set takes them, ';' between (README: Profiles)
ckpt: str = "all"  # all, or one checkpoint of the ladder: step424000, 424000, main, or a hub branch name
results_source: str = ""  # empty: the profile default; run: records of this project; paper: the released numbers
overlay_paper: bool = False  # draw the paper's released curves (dotted) beside this run's
make_figures: bool = True  # False for per-checkpoint cluster jobs; a final job with ckpt all draws the figures

# %%
from IPython.display import Markdown, display

from amuro_utils import pipeline

prof = pipeline.setup(profile, results_source, overrides)
print(prof.description)

# %% [markdown]
# ## Instruction-tune and evaluate

# %%
pipeline.run_instruction_tuning(prof, ckpt)

# %% [markdown]
# ## Figure 4, and the training-loss curves
# The loss curves (`figT_instruction_training_loss`) show whether instruction tuning fitted its mixture.

# %%
pipeline.draw(prof, "instruction_tuning", overlay_paper=overlay_paper, enabled=make_figures)

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
display(Markdown(pipeline.verdicts(prof, "instruction_tuning")))
