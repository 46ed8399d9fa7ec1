"""Checks the tests run on what the package writes (not part of the package: nothing in a run calls them)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

# Which records must agree on which settings: (identity path prefix, the key columns within which it must agree).
_AGREEMENT = (("eval.items", ()), ("eval.scoring", ()), ("eval.data", ("eval_set", "format")), ("model", ("ckpt",)),
              ("fine_tune", ("fine_tune", "method", "seed")), ("saved_dtype", ("fine_tune", "method", "seed")))


def _flat(tree, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}.{key}" if prefix else key).items()}
    return {prefix: json.dumps(tree, sort_keys=True)}


def mixed_settings(frame: pd.DataFrame) -> list[str]:
    """Settings that take more than one value among records that must share them (one line each, with counts).

    Every record must agree on the item limit, shots and scoring settings; records of one eval set and format on
    its data and template; records of one checkpoint on its commit; records of one fine-tune (method, seed) on its
    training. Records without an identity (schema 1) cannot be checked and are named when mixed with others.
    """
    if "identity" not in frame.columns or frame.empty:
        return []
    known = frame["identity"].notna()
    lines = []
    if not known.all() and known.any():
        lines.append(f"{int((~known).sum())} records carry no settings identity (schema 1) beside {int(known.sum())} "
                     "that do")
    rows = frame[known]
    flat = [_flat(i) for i in rows["identity"]]
    for prefix, by in _AGREEMENT:
        groups: dict[tuple, dict[str, dict[str, int]]] = {}
        for (_, row), fields in zip(rows.iterrows(), flat):
            group = groups.setdefault(tuple(row[c] if pd.notna(row[c]) else None for c in by), {})
            for path, value in fields.items():
                if path == prefix or path.startswith(prefix + "."):
                    counts = group.setdefault(path, {})
                    counts[value] = counts.get(value, 0) + 1
        for group_key, paths in groups.items():
            for path, counts in paths.items():
                if len(counts) > 1:
                    where = f" (within {dict(zip(by, group_key))})" if by else ""
                    values = ", ".join(f"{v} ×{n}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])[:3])
                    lines.append(f"{path}{where}: {values}")
    return lines



def paired_text(ipynb: str | Path) -> str:
    """The py:percent text jupytext makes from a notebook (what the paired .py must hold)."""
    import jupytext

    return jupytext.writes(jupytext.read(str(ipynb)), fmt="py:percent")
