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
# mean per task group (NLI, summary generation, question generation, paraphrase detection) with a 90 % CI.

# %% tags=["parameters"]
profile: str = "tiny"  # tiny (offline CPU demo), smoke (CI), paper (OLMo-1B on a GPU), paper-reference (released numbers)
results_source: str = ""  # empty: the profile default; run: records of this project; paper: the released numbers
overlay_paper: bool = False  # draw the paper's released curves (dotted) beside this run's

# %%
from IPython.display import display

from amuro_utils import pipeline

prof = pipeline.setup(profile, results_source)

# %% [markdown]
# ## Out-of-domain change per task group and Figure 7

# %%
drawn = pipeline.draw(prof, "ood", overlay_paper=overlay_paper)
display(*drawn.tables.values())

# %% [markdown]
# **What it shows.** In the paper, fine-tuning helps out-of-domain sets of the same task for NLI and question
# generation, barely for summarisation, and appears to *hurt* paraphrase detection — but that last result is an
# artefact of the paper's QQP/STS-B test splits, whose gold labels are all "no" (see the README; the
# `fixed` paraphrase splits remove it).
