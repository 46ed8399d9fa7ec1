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
# # Instruction tuning across the ladder (Figure 4, LLMBar)
#
# **Question.** Does instruction tuning help every checkpoint equally, and does the final, longest-trained model
# gain the most? (Springer et al. report the final OLMo-1B doing *worse* after instruction tuning than an earlier
# checkpoint at about three quarters of its pre-training.)
#
# **Method.** Each checkpoint is tuned on the instruction mixture (a share of TULU v2 in the paper; Tulu chat
# format, loss on the assistant turns only) and scored, like its base, on the benchmarks by rank classification
# (the task's primary metric) and on LLMBar (instruction following: a next-token choice between outputs 1 and 2).

# %% tags=["parameters"]
profile: str = "tiny"  # tiny (offline CPU demo), smoke (CI), paper (OLMo-1B on a GPU), paper-reference (released numbers), or a profile file (.toml/.json)
overrides: str = ""  # profile fields to change, written as ./run_all.sh --set takes them, ';' between (README: Profiles)
ckpt: str = "all"  # all, or one checkpoint of the ladder: step424000, 424000, main, or a hub branch name
results_source: str = ""  # empty: the profile default; run: records of this project; paper: the released numbers
overlay_paper: bool = False  # draw the paper's released curves (dotted) beside this run's
make_figures: bool = True  # False for per-checkpoint cluster jobs; a final job with ckpt all draws the figures

# %%
from IPython.display import Markdown, display

from amuro_utils import pipeline, show

prof = pipeline.setup(profile, results_source, overrides)
print(prof.description)

# %% [markdown]
# ## The recipe and what the model sees
# Read from the profile: the mixture, its size and the training settings; the sets it is scored on; one training
# chat as the training loop gets it, and one evaluation item of a benchmark and of LLMBar in every format they have.

# %%
instruction = prof.instruction
pair = f" and `{prof.overtraining_pair[0]}`, Springer et al.'s earlier rung" if prof.overtraining_pair else ""
display(Markdown(f"Instruction tuning on `{instruction.train_set}` at every checkpoint{pair}; scored on "
                 f"{', '.join(instruction.benchmarks)} and {', '.join(instruction.llmbar)}."))
display(show.recipe(prof, "instruction"))
display(show.evaluation(prof))
display(Markdown(show.prompts(prof, [instruction.benchmarks[0], instruction.llmbar[0]], training=[instruction.name])))

# %% [markdown]
# ## Instruction-tune and evaluate

# %%
pipeline.run_instruction_tuning(prof, ckpt=ckpt)

# %% [markdown]
# ## Predictions against gold
# The instruction-tuned model at the last checkpoint on the first benchmark and on LLMBar: its choice, the gold
# one, and the item's score.

# %%
records = pipeline.load_frame(prof, items=True, kinds=("instruction",))
for eval_set in (instruction.benchmarks[0], instruction.llmbar[0]):
    sample = show.predictions(records, instruction.name, eval_set, profile=prof)
    if len(sample):
        display(Markdown(f"*{sample.attrs['caption']}*"), sample)

# %% [markdown]
# ## Figure 4, and the training-loss curves
# The loss curves (`figT_instruction_training_loss`) show whether instruction tuning fitted its mixture. Below:
# the numbers Fig. 4 draws, base and instruction-tuned, per set over the ladder.

# %%
drawn = pipeline.draw(prof, "instruction_tuning", overlay_paper=overlay_paper, enabled=make_figures)
display(drawn)
if drawn.study is not None:
    sets = [*instruction.benchmarks, *instruction.llmbar]
    display(show.numbers(drawn.study, [(who, s) for s in sets for who in ("base", instruction.name)]))

# %% [markdown]
# ## What this run shows

# %%
display(Markdown(show.verdict_guide()))
display(Markdown(pipeline.verdicts(prof, "instruction_tuning", drawn)))
