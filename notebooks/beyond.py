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
# # Beyond the paper: fine-tuning dynamics, what the base model already knows, predicting the gain
#
# The paper leaves open whether there are "different stages of learning and forgetting during fine-tuning" (§6.3),
# asks for "a measure available during pre-training that correlated with post-fine-tuning task performance"
# (Discussion), for "model internals during pre-training dynamics and how they relate to the effects of fine-tuning",
# and notes that with fixed epochs "the model may converge at a different speed" (Limitations). This notebook asks
# those questions of this run. Each is stated with its hypothesis and direction before anything is computed
# (`amuro_utils/verdicts/beyond.py`), judged by the rules of the paper's claims (the scorecard's interval resampling the units,
# then items; leave-one-out; other readings) and counted apart from them, in the scorecard's "Beyond the paper" section.
#
# What each question reads, and its switch (per profile, `./run_all.sh --set …`): records along every supervised
# fine-tuning (`dynamics`, written by `sft`; off: `dynamics=none`), linear probes of every study checkpoint
# (`probes`, written by `pretrain_probe`; off: `probes=none`), the zero-step loss in every training record, and the
# fine-tune-to-convergence schedule (`converge=true`, run here; off by default: it doubles fine-tuning). On the
# authors' release none of them exists, and the questions are *not measurable*.

# %% tags=["parameters"]
profile: str = "tiny"  # tiny (offline CPU demo), smoke (CI), paper (OLMo-1B on a GPU), paper-reference (released numbers), or a profile file (.toml/.json)
overrides: str = ""  # profile fields to change, written as ./run_all.sh --set takes them, ';' between (README: Profiles)
results_source: str = ""  # empty: the profile default; run: records of this project; paper: the released numbers
ckpt: str = "all"  # fine-tuning to convergence: all, or one checkpoint of the ladder (step424000, main, …)
task: str = "all"  # fine-tuning to convergence: all, or one task of the profile (or its instruction mixture)
converge: bool = False  # also fine-tune every rung to convergence (the profile switch converge; doubles fine-tuning)
make_figures: bool = True  # False for per-checkpoint cluster jobs; a final job with ckpt all draws the figures

# %%
from IPython.display import Markdown, display

from amuro_utils import pipeline

switched = "converge=true" if converge else ""
prof = pipeline.setup(profile, results_source, ";".join(x for x in (overrides, switched) if x))
print(prof.description)

# %% [markdown]
# ## Fine-tuning to convergence (switch: `converge`)
# With the switch on, every study checkpoint is fine-tuned again on each task (and the instruction mixture) with the
# paper's recipe, but for up to `convergence.max_epochs` (default twice the fixed epochs, the linear schedule's
# horizon) and stopped when the loss on a validation split of the task's training data — the `convergence.n_val`
# rows that follow the training sample in the same seeded shuffle, so disjoint from it — has not improved for
# `convergence.patience` evaluations; the best evaluation's weights are kept. These models are scored where the
# claims that compare rungs (A1, B3, B4) read them: the "Learned in FT" sets. Their records live apart from the fixed
# schedule's (`results/<profile>/converge/`) and carry the schedule in their identity.

# %%
pipeline.run_converge(prof, ckpt, task)

# %%
run = pipeline.beyond_run(prof) if make_figures else None

# %% [markdown]
# ## D. Fine-tuning dynamics
# **Question.** Does in-domain performance rise before out-of-domain performance changes (D1)? Do later rungs learn
# faster (D2)? Where in fine-tuning does the format sensitivity appear (D3)?
#
# **Hypotheses** (stated before computing). D1: t½(OOD) − t½(ID) > 0, where t½ is the fraction of fine-tuning at
# which a curve covers half of its change. D2: the fitted change of t½(ID) over the ladder < 0. D3: t½ of the
# fine-tuned format gap (default − other formats) < 0.5.
#
# **Method.** Every supervised fine-tuning hands its model, after the optimizer step at each fraction of its steps
# (`dynamics.fractions`; the loss and the order of training are unchanged), to an evaluation of the primary
# in-domain set in every format, the OOD sets and the other tasks' primary sets (default format), on the first
# `dynamics.eval_limit` items of each set, and of the held-out pre-training-text loss (the sensitivity probe's
# blocks). Fraction 0 is the base model's record and 1 the fine-tuned model's, cut to the same items. The figure draws
# one line per rung: in-domain, OOD and cross-task score, and held-out loss, against the fraction of fine-tuning.

# %%
if run:
    run.figure("figB_dynamics")
    display(Markdown(run.shows("D")))

# %% [markdown]
# ## P. What the base model already knows
# **Question.** Does a linear probe on the frozen base model see the latent gain that few-shot evaluation misses
# (claim A1)?
#
# **Hypothesis.** On the classification tasks, the fitted change over the ladder of the best layer's probe accuracy
# minus that of the few-shot base accuracy > 0.
#
# **Method.** Per rung, a fixed budget of each classification task's training rows (`probes.n_train` to fit,
# `probes.n_test` held out, a seeded split) is rendered in the default template; the hidden state at the prompt's
# last token is read at every layer, and a cross-validated L2 logistic regression (scikit-learn) is fit on the
# probe-training rows and scored on the held-out rows. The figure draws probe accuracy by layer and rung, and the
# best layer's beside the few-shot base and the fine-tuned accuracy.

# %%
if run:
    run.figure("figB_probes")
    display(Markdown(run.shows("P")))

# %% [markdown]
# ## R. Predicting the gain before fine-tuning
# **Question.** Which measure available before fine-tuning predicts the fine-tuned score, and the gain?
#
# **Hypotheses.** Across (rung, task) units, Spearman's ρ of each measure with the fine-tuned score and with the gain
# has the sign listed per measure: the few-shot base score (> 0 with the score, < 0 with the gain), the best probe
# accuracy (> 0, > 0), the held-out pre-training loss (< 0, < 0), Springer et al.'s sensitivity (< 0, < 0) and the
# zero-step loss — the base model's training loss on the fine-tuning examples before any update (< 0, > 0).
#
# **Method.** ρ with the scorecard's interval resampling the (rung, task) units, then items; the other reading is the mean ρ
# within each task across rungs. The figure draws every ρ with its interval; the table ranks the measures by |ρ|.

# %%
if run:
    run.figure("figB_predictors")
    display(Markdown(run.shows("R")))

# %% [markdown]
# ## C. The claims that compare rungs, under fine-tuning to convergence
# **Question.** Do A1 (the latent improvement), B3 (a gain at every checkpoint) and B4 (the gain's shape over the
# ladder) hold when every rung is fine-tuned to convergence rather than for fixed epochs?
#
# **Hypothesis.** Each part reaches the same verdict under both schedules (the fixed-epoch verdict is in the
# hypothesis column). Not measurable unless the `converge` switch was on.
#
# **Method.** The fine-tuned in-domain score per rung under both schedules (figure: fixed epochs solid, to
# convergence dash-dotted, base dashed), and the claims' statistics recomputed on the converged models.

# %%
if run:
    run.figure("figB_converge")
    display(Markdown(run.shows("C")))

# %% [markdown]
# ## What this run shows
# Every question beyond the paper, as the scorecard's "Beyond the paper" section states it
# (`figures/<profile>/claims.md`, and `beyond.md` / `beyond.csv`): its hypothesis, the verdict table and the
# predictors ranked. This notebook, the last of the study, also writes the whole scorecard.

# %%
display(Markdown(pipeline.verdicts(prof, "beyond", run)))
