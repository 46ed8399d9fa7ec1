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
# # Cross-task transfer and forgetting (Figure 6)
#
# **Question.** What does fine-tuning on one task do to the model's ability on another task?
#
# **Method.** For every pair (fine-tuned on task Y, evaluated on task X's in-domain set) and checkpoint, the
# relative change (fine-tuned − base) / base. The paper's headline numbers are the *mean relative change* (MRC)
# over the classification→generation pairs (fine-tuned on NLI or paraphrase, evaluated on summarisation or
# question generation) and over the generation→classification pairs, averaged over all checkpoints including the
# final one.

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
# ## The cross-task matrix
# Every fine-tuned model was scored (by the sft notebook) on every other task's primary set: rows the models (base
# first), columns the sets, at the last checkpoint; the figure follows each off-diagonal cell over the ladder.

# %%
drawn = pipeline.draw(prof, "transfer", overlay_paper=overlay_paper)
if drawn.study is not None:
    primaries = [t.primary for t in prof.tasks]
    display(show.matrix(drawn.study, ["base", *[t.name for t in prof.tasks]], primaries))

# %% [markdown]
# ## Figure 6 and the mean relative change
# The MRC table of this run, then the same table from the authors' released numbers.

# %%
display(*drawn.tables.values())
release = show.release_table("mrc_cross_task")
display(Markdown("The authors' release: " + "; ".join(f"{r.direction} {r.mrc_pct:+.1f} %"
                                                      for r in release.itertuples()) + "."))

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(show.verdict_guide()))
display(Markdown(pipeline.verdicts(prof, "transfer", drawn)))
