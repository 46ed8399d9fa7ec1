"""The optional vLLM backend: a clear error without vLLM, and the backend comparison arithmetic (no GPU needed)."""

from __future__ import annotations

import importlib.util

import pytest

from amuro_utils.models import vllm_backend


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_missing_vllm_names_the_install_command():
    with pytest.raises(ImportError, match=r"pip install -e \.\[vllm\]"):
        vllm_backend.engine("allenai/OLMo-1B-hf", "step1000-tokens4B")
    with pytest.raises(ImportError, match="evaluate.generate"):
        vllm_backend.generate(None, None, ["### Input: x\n ### Summary: "])


def test_compare_backends_reports_exact_match_and_rouge_difference():
    prompts = ["p1", "p2", "p3", "p4"]
    references = ["the cat sat", "a dog ran", "birds fly", "fish swim"]
    hf = ["the cat sat", "a dog", "birds fly", "nothing"]
    fast = ["the cat sat", "a dog ran", "birds fly", "fish"]
    report = vllm_backend.compare_backends(lambda p: hf[:len(p)], lambda p: fast[:len(p)], prompts, references)
    # ROUGE-L F1 per item: hf 1, 0.8, 1, 0; vllm 1, 1, 1, 0.667 (rouge_score, no stemming).
    assert report["n"] == 4 and report["exact_match"] == 0.5
    assert report["rougeL_hf"] == pytest.approx((1 + 0.8 + 1 + 0) / 4)
    assert report["rougeL_vllm"] == pytest.approx((1 + 1 + 1 + 2 / 3) / 4)
    assert report["rougeL_diff_mean"] == pytest.approx((0.2 + 2 / 3) / 4)
    assert report["rougeL_abs_diff_mean"] == pytest.approx((0.2 + 2 / 3) / 4)
    assert [d["index"] for d in report["differing"]] == [1, 3]
    assert vllm_backend.compare_backends(lambda p: hf[:len(p)], lambda p: fast[:len(p)], prompts, references,
                                         sample=1)["exact_match"] == 1.0
    with pytest.raises(ValueError, match="4 prompts for 3 references"):
        vllm_backend.compare_backends(lambda p: p, lambda p: p, prompts, references[:3])
