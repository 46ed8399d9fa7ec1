"""What the base model already knows (beyond the paper): linear probes on its frozen hidden states.

For each classification task of a profile, a fixed budget of its training rows (a seeded split into probe-training
and held-out rows, disjoint) is rendered in the task's default template without demos; the hidden state at the
prompt's last token is read at every layer (layer 0 = the token embeddings). Per layer, a cross-validated L2
logistic regression (scikit-learn `LogisticRegressionCV`, inverse regularisation chosen by K-fold accuracy on the
probe-training rows only) is fit and scored on the held-out rows, item by item. A probe well above chance where
4-shot prompting sits at chance is knowledge the model has but prompting does not surface — the latent improvement
of claim A1, measured before any fine-tuning.

The paper's Limitations ask for "model internals during pre-training dynamics and how they relate to the effects
of fine-tuning"; this module measures one such internal, per rung and layer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config.profiles import ProbeSettings
from ..data import tasks

PROBE_COLUMNS = ("task", "train_set", "layer", "accuracy", "chance", "majority", "n_train", "n_test", "C", "scores")


def hidden_features(model, tokenizer, prompts, *, batch_size: int = 16, max_length: int = 512) -> np.ndarray:
    """(layers + 1, n_prompts, hidden) float32: every layer's hidden state at each prompt's last token (prompts
    longer than max_length keep their last max_length tokens, so the last token is always the prompt's own)."""
    import torch

    features = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        for start in range(0, len(prompts), batch_size):
            ids = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_length:]
                   for p in prompts[start:start + batch_size]]
            width = max(len(x) for x in ids)
            batch = torch.full((len(ids), width), pad, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for row, x in enumerate(ids):  # right padding: the last real token sits at len(x) - 1
                batch[row, :len(x)] = torch.tensor(x)
                mask[row, :len(x)] = 1
            device = next(model.parameters()).device
            out = model(input_ids=batch.to(device), attention_mask=mask.to(device), output_hidden_states=True,
                        use_cache=False, logits_to_keep=1)
            last = torch.tensor([len(x) - 1 for x in ids], device=device)
            rows = torch.arange(len(ids), device=device)
            features.append(torch.stack([h[rows, last].float().cpu() for h in out.hidden_states]).numpy())
    return np.concatenate(features, axis=1)


def fit_probe(train_x: np.ndarray, train_y, test_x: np.ndarray, test_y, settings: ProbeSettings) -> tuple:
    """(per-item 0/1 correctness on the held-out rows, the chosen C) of a cross-validated logistic regression.

    Features are standardised on the probe-training rows; C is chosen among settings.Cs by settings.folds-fold
    accuracy on those rows only, so the held-out rows never inform the fit."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    classes = np.unique(train_y)
    if len(classes) < 2:
        return (test_y == classes[0]).astype(float), float("nan")  # one label seen: the probe can only say it
    folds = int(min(settings.folds, np.bincount(np.unique(train_y, return_inverse=True)[1]).min()))
    if folds < 2:
        raise ValueError(f"a probe needs ≥ 2 training rows of every label for cross-validation; got "
                         f"{dict(zip(*np.unique(train_y, return_counts=True)))}: raise ProbeSettings.n_train")
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(settings.Cs), l1_ratios=(0.0,), cv=folds, scoring="accuracy", max_iter=settings.max_iter,
        random_state=settings.seed, use_legacy_attributes=False))
    model.fit(train_x, train_y)
    return (model.predict(test_x) == test_y).astype(float), float(np.ravel(model[-1].C_)[0])


def probe_split(dataset_name: str, settings: ProbeSettings, source: str) -> tuple[list[dict], list[dict]]:
    """(probe-training rows, held-out rows) of a training split: its first n_train + n_test rows after a seeded
    shuffle (the probe's own seed, not the fine-tuning sample's), split in that order."""
    rows = tasks.sample_train(dataset_name, n=settings.n_train + settings.n_test, seed=settings.seed, source=source)
    return rows[: settings.n_train], rows[settings.n_train:]


def probe_model(model, tokenizer, task_plans, settings: ProbeSettings, *, source: str = "offline",
                max_length: int = 512) -> pd.DataFrame:
    """One row per (classification task, layer): held-out probe accuracy with its per-item scores, chance (1 / the
    labels seen), the held-out majority share, the rows used and the chosen C (PROBE_COLUMNS)."""
    out = []
    for task in task_plans:
        if task.kind != "classification":
            continue
        dataset = tasks.get(task.train_set)
        train, test = probe_split(task.train_set, settings, source)
        prompts = [tasks.render(dataset, row, "default") for row in train + test]
        labels = np.array([row["target"].strip() for row in train + test])
        features = hidden_features(model, tokenizer, prompts, batch_size=settings.batch_size, max_length=max_length)
        n = len(train)
        _, counts = np.unique(labels[n:], return_counts=True)
        for layer in range(features.shape[0]):
            scores, c = fit_probe(features[layer, :n], labels[:n], features[layer, n:], labels[n:], settings)
            out.append({"task": task.name, "train_set": task.train_set, "layer": layer,
                        "accuracy": float(scores.mean()), "chance": 1 / len(np.unique(labels)),
                        "majority": float(counts.max() / counts.sum()), "n_train": n, "n_test": len(test), "C": c,
                        "scores": scores})
    return pd.DataFrame(out, columns=list(PROBE_COLUMNS))
