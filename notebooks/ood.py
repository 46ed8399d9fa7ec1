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

# %%

# %% [markdown]
# # Out-of-domain generalisation (Figure 7)
#
# **Question.** Does what a model learns in fine-tuning carry over to other datasets of the same task?
#
# **Method.** For each task, the raw change (fine-tuned − base) on its out-of-domain sets, per checkpoint, and the
# mean per task group (NLI, summary generation, question generation, paraphrase detection) with its interval
# (OOD sets × checkpoints, then items: claim B7's interval).

# %% tags=["parameters"]
profile: str = "tiny"  # tiny (offline CPU demo), smoke (CI), paper (OLMo-1B on a GPU), paper-reference (released numbers), or a profile file (.toml/.json)
overrides: str = ""  # profile fields to change, written as ./run_all.sh --set takes them, ';' between (README: Profiles)
results_source: str = ""  # empty: the profile default; run: records of this project; paper: the released numbers
overlay_paper: bool = False  # draw the paper's released curves (dotted) beside this run's

# %%
from IPython.display import Markdown, display

from amuro_utils import pipeline, show

prof = pipeline.setup(profile, results_source, overrides)

# %% [markdown]
# ## The out-of-domain sets
# Read from the profile: each task's training set, its in-domain sets and the out-of-domain sets of the same task
# it is tested on (the fine-tuned models were scored on them by the sft notebook, in the default format); then one
# item of each out-of-domain set as the model sees it.

# %%
display(show.sets(prof))
display(Markdown(show.prompts(prof, list(dict.fromkeys(s for t in prof.tasks for s in t.ood)))))

# %% [markdown]
# ## Out-of-domain change per task group and Figure 7
# The group table, then the numbers behind the figure: base and fine-tuned scores on each out-of-domain set over
# the ladder.

# %%
drawn = pipeline.draw(prof, "ood", overlay_paper=overlay_paper)
display(*drawn.tables.values())
if drawn.study is not None:
    display(show.numbers(drawn.study, [(who, s) for t in prof.tasks for s in t.ood for who in ("base", t.name)]))

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(show.verdict_guide()))
display(Markdown(pipeline.verdicts(prof, "ood", drawn)))
