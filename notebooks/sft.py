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
# # Supervised fine-tuning across the ladder (Figure 3, Table 5)
#
# **Question.** Does a checkpoint that pre-trained longer also fine-tune better — and for which tasks?
#
# **Method.** Each checkpoint is fine-tuned on each task (NLI, paraphrase detection, summarisation, question
# generation) with the paper's recipe: completion-only loss with EOS, AdamW, a linear schedule with warm-up. Every
# fine-tuned model then runs its whole evaluation plan once — in-domain and out-of-domain sets in every prompt
# format, and the other tasks' sets — so that the format, transfer and ood notebooks only analyse recorded
# results. Base and fine-tuned models are scored identically.

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

from amuro_utils import pipeline, show

prof = pipeline.setup(profile, results_source, overrides)
print(prof.description)

# %% [markdown]
# ## The recipe
# Every number below is read from the profile (`amuro_utils/config/profiles.py`; `--set` changes it, README: Profiles):
# one row per task, each trained once per checkpoint (and per seed and method where the profile has several).

# %%
display(show.recipe(prof, "sft"))
display(show.evaluation(prof))
display(Markdown(show.scoring(prof)))

# %% [markdown]
# ## What the model sees
# One training example of each task as the training loop gets it (the default template; the loss is taken on the
# completion only), then one evaluation item of each task's in-domain set in every prompt format: the paper
# trains in one format and tests in all of them (the `format` notebook compares them).

# %%
display(Markdown(show.prompts(prof, [t.primary for t in prof.tasks], training=[t.name for t in prof.tasks])))

# %% [markdown]
# ## Fine-tune and evaluate
# A job whose records are all present is skipped; an interrupted one resumes from its records (a finished
# fine-tuned model is kept on disk until its evaluation plan is complete). Beyond the paper, with the profile's
# `dynamics` switch each fine-tuning is also evaluated at fractions of its optimizer steps (the loss and the order of
# training unchanged), and every training record holds its zero-step loss; the `beyond` notebook reads both.

# %%
pipeline.run_sft(prof, ckpt=ckpt, task=task)

# %% [markdown]
# ## Predictions against gold
# A sample of each fine-tuned model's outputs on its own in-domain set at the last checkpoint, beside the gold
# answer and the item's score (accuracy, or ROUGE-L F1).

# %%
records = pipeline.load_frame(prof, items=True, kinds=("sft",))
for plan_ in prof.tasks:
    sample = show.predictions(records, plan_.name, plan_.primary, profile=prof)
    if len(sample):
        display(Markdown(f"*{sample.attrs['caption']}*"), sample)

# %% [markdown]
# ## Figure 3, Table 5, the training-loss curves and forgetting
# `figT_sft_training_loss` shows whether each fine-tuning fitted its training set (loss per optimizer step), and
# `figS3_forgetting` how much it raised the loss on held-out pre-training text (Springer et al.'s forgetting).
# `fig3_sft_answer_text` and `fig3_sft_discrimination` draw Fig. 3 on the continuous readings beside the paper's
# metric (as in `pretrain_probe`), and `snr_fine_tuned` gives each fine-tuned (set, metric) series' signal-to-noise
# over the ladder (Heineman et al.; noise: each score's item standard error and, with several training seeds,
# their spread). Below the figures: the numbers Fig. 3 draws, each fine-tuned model on its own in-domain sets.

# %%
drawn = pipeline.draw(prof, "sft", overlay_paper=overlay_paper, enabled=make_figures)
display(*drawn.tables.values())
if drawn.study is not None:
    own = [(who, s) for t in prof.tasks for s in t.in_domain for who in ("base", t.name)]
    display(show.numbers(drawn.study, own))

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(show.verdict_guide()))
display(Markdown(pipeline.verdicts(prof, "sft", drawn)))
