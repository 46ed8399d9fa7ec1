"""Optional vLLM generation backend (GPU only): greedy, 60 new tokens, the same contract as evaluate.generate.

vLLM is imported lazily, so the package works without it; install it on a GPU machine with
`pip install -e .[vllm]`. Greedy outputs can differ slightly from transformers' generate (different kernels), so
pick one engine for every checkpoint of a study and check the two agree with `compare_backends` first.
"""

from __future__ import annotations

import gc
from typing import Callable, Sequence

import numpy as np

from . import evaluate

INSTALL_HINT = ("vLLM is not installed. On a CUDA GPU machine run `pip install -e .[vllm]`; without a GPU use the "
                "transformers backend (evaluate.generate).")

# One engine at a time: each holds most of the GPU's memory, so a new checkpoint revision replaces the last one.
_ENGINE: dict = {"key": None, "llm": None}


def _vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    return vllm


def engine(model: str, revision: str | None = None, *, dtype: str = "bfloat16", seed: int = 0,
           gpu_memory_utilization: float = 0.85, max_model_len: int = 2048, enable_prefix_caching: bool = True):
    """The vLLM `LLM` for one checkpoint revision (hub id + branch, or a local folder); reused while it is current."""
    key = (model, revision, dtype, seed, max_model_len, enable_prefix_caching)
    if _ENGINE["key"] == key:
        return _ENGINE["llm"]
    vllm = _vllm()
    release()
    # Prefix caching: every 4-shot prompt of a set starts with the same demos, computed once per set.
    _ENGINE["llm"] = vllm.LLM(model=model, revision=revision, tokenizer_revision=revision, dtype=dtype, seed=seed,
                              gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                              enable_prefix_caching=enable_prefix_caching)
    _ENGINE["key"] = key
    return _ENGINE["llm"]


def release() -> None:
    """Free the current engine's GPU memory."""
    if _ENGINE["llm"] is None:
        return
    _ENGINE["llm"], _ENGINE["key"] = None, None
    gc.collect()
    from vllm.distributed import cleanup_dist_env_and_memory

    cleanup_dist_env_and_memory()


def generate(llm, tokenizer, prompts: Sequence[str], max_new_tokens: int = 60,
             max_length: int | None = None) -> tuple[list[str], int]:
    """Greedy continuations (texts without special tokens) and the number of left-truncated prompts."""
    vllm = _vllm()
    budget = None if max_length is None else max_length - max_new_tokens
    # Same tokenisation and left-truncation as evaluate.generate, so both backends see identical token ids.
    ids, truncated = evaluate._encode(tokenizer, prompts, budget)
    evaluate._check_nonempty(ids, prompts)
    params = vllm.SamplingParams(temperature=0, max_tokens=max_new_tokens, skip_special_tokens=True)
    outputs = llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
    return [out.outputs[0].text for out in outputs], sum(truncated)


def compare_backends(hf_generate: Callable[[list[str]], list[str]], vllm_generate: Callable[[list[str]], list[str]],
                     prompts: Sequence[str], references: Sequence[str], sample: int | None = 200) -> dict:
    """Run both backends on the first `sample` prompts: exact-match rate and ROUGE-L (vs references) of each.

    Needs a GPU for the vLLM side, e.g.
    `compare_backends(lambda p: evaluate.generate(model, tok, p, max_length=2048)[0],
                      lambda p: generate(engine(repo, rev), tok, p, max_length=2048)[0], prompts, refs)`.
    """
    if len(prompts) != len(references):
        raise ValueError(f"{len(prompts)} prompts for {len(references)} references")
    prompts, references = list(prompts[:sample]), list(references[:sample])
    hf, fast = hf_generate(prompts), vllm_generate(prompts)
    if len(hf) != len(prompts) or len(fast) != len(prompts):
        raise ValueError(f"a backend returned {len(hf)} / {len(fast)} texts for {len(prompts)} prompts")
    rouge_hf, rouge_vllm = evaluate.rouge_l(hf, references), evaluate.rouge_l(fast, references)
    differ = [i for i, (a, b) in enumerate(zip(hf, fast)) if a != b]
    return {"n": len(prompts), "exact_match": 1 - len(differ) / len(prompts),
            "rougeL_hf": float(rouge_hf.mean()), "rougeL_vllm": float(rouge_vllm.mean()),
            "rougeL_diff_mean": float(np.mean(rouge_vllm - rouge_hf)),
            "rougeL_abs_diff_mean": float(np.mean(np.abs(rouge_vllm - rouge_hf))),
            "differing": [{"index": i, "hf": hf[i], "vllm": fast[i]} for i in differ[:5]]}
