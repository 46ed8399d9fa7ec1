"""Every statistic, once: what a figure, a table or a verdict shows, computed as a point estimate plus resamples.
Figures, tables (`figures/<profile>/*.md`) and the scorecard (amuro_utils.verdicts.claims) all read these, so the
interval drawn on a figure is the interval the scorecard judges; they resample nothing of their own.

- `resampling`: intervals, the record's own bootstrap, unit weights, `estimate`;
- `cells`: the measurement layer (cells with their resamples);
- `study`: one source's cells, steps and held-out-loss banks (`Study`);
- `gains`: the statistics (gains, relative change, trends, format gaps, curves along fine-tuning);
- `tables`: the tables the notebooks write;
- `analysis`: which cells each analysis compares (pairs, the OOD and cross-task groups, chance and constant
  predictors);
- `signal`: the continuous readings and signal-to-noise.
The names below are re-exported here (`stats.Study`, `stats.estimate`, …).

functions, so the interval drawn on a figure is the interval the scorecard judges.

Two layers of uncertainty, kept apart:

- **Measurement** (cells). A cell is one (eval_set, fine_tune, ckpt, format) score. Its resamples come from what
  the records hold, best first: per-item scores, paired across every cell of one evaluation set (a resample draws
  the same item indices for all of them, so base − fine-tuned keeps its pairing); with several training seeds,
  seeds first, then items; a released cell with a bootstrap std: N(performance, std²); a released cell without one:
  N(p, p(1−p)/n), n = the validation size; otherwise the cell is fixed. Held-out-loss cells (sensitivity,
  forgetting) resample noise / training seeds, then held-out text blocks (paired across checkpoints).
- **Units**. A statistic that averages over task pairs, evaluation sets, fine-tuning tasks or checkpoints can also
  resample those units (a bootstrap over the units the claim quantifies, then items, then seeds: resample b draws
  unit counts and uses cell resample b). The point estimate is the same either way; `Estimate.resamples` is the
  units-then-measurement interval, `Estimate.measurement` the measurement-only one (the paper's own bootstrap).

A statistic is a function `compute(g, w)`: `g(*key)` gives a cell's vector [point, resamples…] (None where the
cell is missing) and `w(dim, label, stratum)` the weight of one unit in every column (1 for the point; bootstrap
counts where `dim` is resampled; 0 for a unit left out). `estimate` evaluates it under each weighting.
"""

from .analysis import cross_task_groups, forgetting_groups
from .cells import Cells, CellsUnion, View, cell_interval, estimate, estimate_units
from .gains import (
    FORMAT_READINGS,
    along_curve,
    along_mean,
    along_value,
    cell_trends,
    change_between,
    end_to_end,
    format_gap,
    gain,
    gain_by_ckpt,
    gain_rows,
    mean_format_gap,
    mean_gain,
    mean_relative_change,
    pair_gains,
    pair_label,
    ratio_of_means,
    sensitivity_change,
    trend,
    window_gain,
)
from .resampling import (
    CONFIDENCE,
    FORGETTING_COLUMNS,
    MIN_TAIL,
    MIN_VALID_SHARE,
    MODE_LABELS,
    N_BOOT,
    PAPER_RESAMPLES,
    RELEASE_N,
    SENSITIVITY_COLUMNS,
    UNIT_LABELS,
    Estimate,
    UnitEstimate,
    UnitsEstimate,
    Unmeasurable,
    Weights,
    bootstrap_ci,
    fitted_change,
    half_time,
    interval,
    normal_z,
    percentile_ci,
    resample_se,
    spearman,
    weighted_midranks,
    wmean,
)
from .study import Study, ladder_steps, select, sensitivity_frame
from .tables import (
    best_probe_rows,
    block_table,
    change_table,
    count_rows,
    format_gap_table,
    mrc_table,
    ood_table,
    sensitivity_table,
    table5,
)

__all__ = ['change_between', 'sensitivity_change', 'window_gain', 'gain', 'ratio_of_means', 'along_curve', 'along_mean', 'along_value', 'N_BOOT', 'PAPER_RESAMPLES', 'bootstrap_ci', 'CONFIDENCE', 'RELEASE_N', 'MODE_LABELS', 'UNIT_LABELS', 'SENSITIVITY_COLUMNS',
           'FORGETTING_COLUMNS', 'Unmeasurable', 'MIN_VALID_SHARE', 'MIN_TAIL', 'interval', 'normal_z',
           'resample_se', 'percentile_ci', 'Cells', 'cell_interval', 'View', 'CellsUnion', 'Weights', 'wmean',
           'fitted_change', 'half_time', 'weighted_midranks', 'spearman', 'Estimate', 'UnitEstimate',
           'UnitsEstimate', 'estimate_units', 'estimate', 'Study', 'select', 'ladder_steps', 'sensitivity_frame',
           'pair_label', 'gain_rows', 'mean_gain', 'pair_gains', 'mean_relative_change', 'gain_by_ckpt', 'trend',
           'cell_trends', 'end_to_end', 'FORMAT_READINGS', 'format_gap', 'mean_format_gap', 'count_rows',
           'change_table', 'table5', 'mrc_table', 'cross_task_groups', 'forgetting_groups', 'ood_table',
           'format_gap_table', 'block_table', 'best_probe_rows', 'sensitivity_table']
