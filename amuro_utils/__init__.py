"""amuro_utils: the package behind the Amuro & Char reproduction notebooks, one subpackage per layer of the study.

From the bottom: `config` (profiles, paths, the reporter), `data` (datasets), `store` (cached results and their
identities), `models` (ladders, training, evaluation, probes), `stats` (every statistic, once), `study` (stages, plan,
cost, the model jobs), `figures`, `verdicts` (claims, calibration, the scorecard); on top, the front ends: `pipeline`
(what a notebook calls), `show` (what it shows its reader) and `run` (run_all.sh, SLURM). A layer imports only those
below it (the `layers` contract in pyproject.toml, checked by tests/test_architecture.py).
"""

__version__ = "0.1.0"
