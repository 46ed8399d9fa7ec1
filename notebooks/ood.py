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
# # Out-of-domain generalisation (Figure 7)
#
# **Question.** Does what a model learns in fine-tuning carry over to other datasets of the same task?
#
# **Method.** For each task, the raw change (fine-tuned − base) on its out-of-domain sets, per checkpoint, and the
# mean per task group (NLI, summary generation, question generation, paraphrase detection) with its 95 %
# interval (OOD sets × checkpoints, then items: claim B7's interval).

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
# ## Out-of-domain change per task group and Figure 7

# %%
drawn = pipeline.draw(prof, "ood", overlay_paper=overlay_paper)
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
display(Markdown(pipeline.verdicts(prof, "ood")))
