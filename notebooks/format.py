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
# # Sensitivity to the prompt format (Figure 5)
#
# **Question.** Does fine-tuning make a model depend on the exact prompt format it was trained with?
#
# **Method.** Base and fine-tuned models were scored (by the sft notebook) on each task's in-domain set in three
# formats: the training format ("### Input: …"), an instruction phrasing, and bare input-output concatenation.
# Here we only read the records.

# %% tags=["parameters"]
profile: str = "tiny"  # tiny (offline CPU demo), smoke (CI), paper (OLMo-1B on a GPU), paper-reference (released numbers), or a profile file (.toml/.json)
overrides: str = ""  # profile fields to change, written as ./run_all.sh --set takes them, ';' between (README: Profiles)
results_source: str = ""  # empty: the profile default; run: records of this project; paper: the released numbers
overlay_paper: bool = False  # draw the paper's released curves (dotted) beside this run's

# %%
from IPython.display import Markdown, display

from amuro_utils import pipeline

prof = pipeline.setup(profile, results_source, overrides)

# %% [markdown]
# ## Figure 5

# %%
drawn = pipeline.draw(prof, "format", overlay_paper=overlay_paper)
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
display(Markdown(pipeline.verdicts(prof, "format")))
