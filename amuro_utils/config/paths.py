"""Where things live: the repository's data, results and figures folders (overridable by environment)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("AMURO_DATA_DIR", REPO_ROOT / "data"))
RESULTS_ROOT = Path(os.environ.get("AMURO_RESULTS_DIR", REPO_ROOT / "results"))
FIGURES_ROOT = Path(os.environ.get("AMURO_FIGURES_DIR", REPO_ROOT / "figures"))


def results_dir(profile: str) -> Path:
    """Folder of one profile's generated outputs (records, executed notebooks, checkpoints)."""
    return RESULTS_ROOT / profile


def figures_dir(profile: str) -> Path:
    """Folder of one profile's emitted figures and tables (paper-reference → figures/paper_reference)."""
    return FIGURES_ROOT / profile.replace("-", "_")
