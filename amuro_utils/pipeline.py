"""What a notebook calls: one front end over the study's layers. Set-up and the current results as frames
(amuro_utils.study.frames), the model jobs (amuro_utils.study.jobs), a notebook's figures (amuro_utils.figures.draw)
and its verdicts and scorecard (amuro_utils.verdicts.scorecard). Every step is resumable and settings-aware, and a
no-op on a profile whose results are read (the authors' release, lm-eval output), so a notebook reads top to bottom
with no branches. `python -m amuro_utils.pipeline --profile P` writes a profile's scorecard.
"""

from __future__ import annotations

from .figures import draw as figures
from .figures.draw import Drawn, figure_inputs, require
from .study.frames import (
    HELDOUT_LOSS,
    dynamics_frame,
    forgetting_frame,
    load_frame,
    probe_frame,
    runs_models,
    sensitivity_rows,
    setup,
    source_words,
    store,
    training_frame,
)
from .study.jobs import (
    checkpoints,
    ladder_report,
    prepare_ladder,
    probes,
    run_base,
    run_converge,
    run_instruction_tuning,
    run_sft,
    sensitivity,
    train_examples,
    validation_examples,
)
from .verdicts.scorecard import (
    beyond_run,
    beyond_studies,
    claim_inputs,
    scorecard,
    scorecard_identity,
    stored_beyond_table,
    verdicts,
)

__all__ = ["HELDOUT_LOSS", "Drawn", "beyond_run", "beyond_studies", "checkpoints", "claim_inputs", "draw",
           "dynamics_frame", "figure_inputs", "forgetting_frame", "ladder_report", "load_frame", "prepare_ladder",
           "probe_frame", "probes", "require", "run_base", "run_converge", "run_instruction_tuning", "run_sft",
           "runs_models", "scorecard", "scorecard_identity", "sensitivity", "sensitivity_rows", "setup",
           "source_words", "store", "stored_beyond_table", "train_examples", "training_frame", "validation_examples",
           "verdicts"]


def draw(profile, notebook: str, *, overlay_paper: bool = False, enabled: bool = True) -> Drawn:
    """A notebook's figures and tables as its stage names them (amuro_utils.figures.draw.draw), with the figures of
    the questions beyond the paper where the stage draws them; pass what it returns to `verdicts`."""
    return figures.draw(profile, notebook, overlay_paper=overlay_paper, enabled=enabled, beyond=beyond_run)


if __name__ == "__main__":
    import argparse

    from .study import overrides

    parser = argparse.ArgumentParser(description="Judge every claim of both papers on a profile's recorded results (or "
                                                 "the authors' release): figures/<profile>/claims.md and claims.csv.")
    overrides.add_arguments(parser, "paper-reference")
    args = parser.parse_args()
    chosen = setup(args.profile_file or args.profile, overrides=";".join(args.overrides))
    print("\n".join(map(str, scorecard(chosen))))
