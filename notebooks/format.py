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
# # Sensitivity to the prompt format (Figure 5)
#
# **Question.** Does fine-tuning make a model depend on the exact prompt format it was trained with?
#
# **Method.** Base and fine-tuned models were scored (by the sft notebook) on each task's in-domain set in every
# format of the profile: the training format ("### Input: …"), an instruction phrasing, and bare input-output
# concatenation. Fine-tuning uses the first only. Here we only read the records.

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
# ## The formats, side by side
# One item of each task's primary in-domain set, as each format renders it (the demos before it are rendered in
# the same format).

# %%
display(Markdown(f"Formats of this profile: {', '.join(prof.formats)}; the models are fine-tuned in "
                 f"`{prof.formats[0]}` only."))
display(Markdown(show.prompts(prof, [t.primary for t in prof.tasks])))

# %% [markdown]
# ## Figure 5, and the numbers behind it
# Each task's base and fine-tuned model on its in-domain sets, in every format, over the ladder; the table after
# the figure gives the gap between the training format and the others.

# %%
drawn = pipeline.draw(prof, "format", overlay_paper=overlay_paper)
display(*drawn.tables.values())
if drawn.study is not None:
    display(show.by_format(drawn.study, [(who, s) for t in prof.tasks for s in t.in_domain for who in ("base", t.name)]))

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(show.verdict_guide()))
display(Markdown(pipeline.verdicts(prof, "format", drawn)))
