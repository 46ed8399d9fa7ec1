"""Fine-tuning: exact encodings with the real OLMo tokenizer, the selective loss, loss normalisation, schedule."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from amuro_utils.config.profiles import TrainSettings
from amuro_utils.data.offline import olmo_tokenizer
from amuro_utils.models import train

NLI_PROMPT = "### Input_1: The cat sat on the mat.\n ### Input_2: A cat is sitting.\n ### Inference: "


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The models here are tiny: thread start-up and spinning cost more than they save on a shared 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tok():
    return olmo_tokenizer()


def tiny_model(seed: int = 0):
    from transformers import OlmoConfig, OlmoForCausalLM

    torch.manual_seed(seed)
    config = OlmoConfig(vocab_size=50304, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=2, max_position_embeddings=256, tie_word_embeddings=True)
    return OlmoForCausalLM(config)


def nli_examples(n: int) -> list[dict]:
    words = ("entailment", "neutral", "contradiction")
    return [{"prompt": f"### Input_1: sentence number {i}{' long' * (i % 5)}\n ### Input_2: another {i}\n"
                       " ### Inference: ", "completion": words[i % 3]} for i in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# encoding


def test_prompt_completion_ids_and_mask_exact(tok):
    enc = train.encode_prompt_completion(tok, NLI_PROMPT, "entailment", 2048)
    assert enc["input_ids"] == [4118, 19832, 64, 18, 27, 380, 5798, 2206, 327, 253, 1111, 15, 187, 209, 4118, 19832,
                                64, 19, 27, 329, 5798, 310, 7063, 15, 187, 209, 4118, 496, 1793, 27, 46518, 420, 50279]
    # prompt[:-1] is 30 tokens; the trailing space lives in "Ġentail" (46518), which is therefore supervised.
    assert enc["labels"] == [-100] * 30 + [46518, 420, 50279]


def test_prompt_without_trailing_space_gets_one(tok):
    enc = train.encode_prompt_completion(tok, "Is it raining?", "yes", 2048)
    assert tok.decode(enc["input_ids"]) == "Is it raining? yes<|endoftext|>"
    assert enc["input_ids"] == [2513, 352, 1218, 1699, 32, 4754, 50279]
    assert enc["labels"] == [-100] * 5 + [4754, 50279]


def test_truncation_keeps_partial_and_drops_fully_masked(tok):
    kept = train.encode_prompt_completion(tok, NLI_PROMPT, "entailment", 31)
    assert kept["input_ids"][-1] == 46518 and kept["labels"] == [-100] * 30 + [46518]
    examples = [{"prompt": NLI_PROMPT, "completion": "entailment"}, {"prompt": "Is it raining?", "completion": "yes"}]
    encoded = train.encode_examples(tok, examples, kind="prompt_completion", max_length=30)
    assert [e["input_ids"] for e in encoded] == [[2513, 352, 1218, 1699, 32, 4754, 50279]]


def test_chat_encoding_masks_all_but_assistant_turns(tok):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi there \n"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
                {"role": "assistant", "content": "Goodbye.\n"}]
    enc = train.encode_messages(tok, messages, 2048)
    assert tok.decode(enc["input_ids"]) == ("<|system|>\nBe brief.\n<|user|>\nHi there\n<|assistant|>\nHello!"
                                            "<|endoftext|>\n<|user|>\nBye\n<|assistant|>\nGoodbye.<|endoftext|>")
    spans, current = [], []
    for token, label in zip(enc["input_ids"], enc["labels"]):
        if label != train.IGNORE:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    spans.append(current)
    # Both replies end with EOS; the first keeps the "\n" before the next turn (finetune.py's span arithmetic).
    assert [tok.decode(s) for s in spans] == ["Hello!<|endoftext|>\n", "Goodbye.<|endoftext|>"]
    assert enc["labels"][:23] == [-100] * 23 and enc["labels"][23:27] == [12092, 2, 50279, 187]


def test_encoding_errors_name_the_fix(tok):
    with pytest.raises(ValueError, match="invalid chat role 'tool'"):
        train.encode_messages(tok, [{"role": "tool", "content": "x"}], 64)
    with pytest.raises(ValueError, match=r"lacks \['completion'\].*tasks.render"):
        train.encode_examples(tok, [{"prompt": "x"}], kind="prompt_completion", max_length=64)
    with pytest.raises(ValueError, match="unknown fine-tuning kind 'sft'"):
        train.encode_examples(tok, [], kind="sft", max_length=64)


# ---------------------------------------------------------------------------------------------------------------
# loss


def test_selective_loss_equals_full_logit_loss(tok):
    model = tiny_model()
    encoded = train.encode_examples(tok, nli_examples(3), kind="prompt_completion", max_length=64)
    batch = train.collate(encoded, tok.pad_token_id)
    sums, counts = train.supervised_token_losses(model, batch)
    assert counts.tolist() == [3, 2, 2]  # "Ġentail ment <eos>", "Ġneutral <eos>", "Ġcontradiction <eos>"
    for row, item in enumerate(encoded):
        one = train.collate([item], tok.pad_token_id)
        torch.testing.assert_close(sums[row] / counts[row], model(**one).loss, rtol=1e-6, atol=1e-6)
    # Over a padded batch, transformers' loss is the token mean: the same sum over the same count.
    torch.testing.assert_close(sums.sum() / counts.sum(), model(**batch).loss, rtol=1e-6, atol=1e-6)


def _window_grads(model, window, settings, micro):
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    accelerator.gradient_accumulation_steps = settings.batch_size // micro
    model.zero_grad(set_to_none=True)
    loss = train.accumulate_window(accelerator, model, window, dataclasses.replace(settings, micro_batch_size=micro),
                                   pad_id=1)
    return loss, [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("normalization", ["sequence_mean", "token_mean"])
def test_loss_normalisation_independent_of_micro_batch(tok, normalization):
    model = tiny_model()
    window = train.encode_examples(tok, nli_examples(8), kind="prompt_completion", max_length=64)
    settings = TrainSettings(batch_size=8, loss_normalization=normalization)
    reference_loss, reference = _window_grads(model, window, settings, 1)
    for micro in (2, 4, 8):
        loss, grads = _window_grads(model, window, settings, micro)
        assert loss == pytest.approx(reference_loss, rel=1e-6)
        for g, r in zip(grads, reference):
            # Equal up to fp32 summation order (micro-batches add the same terms in a different order).
            torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5 * r.abs().max().item())
    # The objective itself, from transformers' per-sequence losses: mean of means vs. token mean.
    per_seq = [model(**train.collate([x], 1)).loss.item() for x in window]
    n_targets = [sum(y != -100 for y in x["labels"]) for x in window]
    expected = (sum(per_seq) / 8 if normalization == "sequence_mean"
                else sum(l * n for l, n in zip(per_seq, n_targets)) / sum(n_targets))
    assert reference_loss == pytest.approx(expected, rel=1e-5)


def test_short_last_batch_is_divided_by_batch_size_under_sequence_mean(tok):
    model = tiny_model()
    window = train.encode_examples(tok, nli_examples(3), kind="prompt_completion", max_length=64)
    loss, _ = _window_grads(model, window, TrainSettings(batch_size=8), 1)
    per_seq = [model(**train.collate([x], 1)).loss.item() for x in window]
    assert loss == pytest.approx(sum(per_seq) / 8, rel=1e-5)  # as accelerate's 1/accumulation in the paper's run


# ---------------------------------------------------------------------------------------------------------------
# optimizer, schedule, training


def test_schedule_steps_match_the_paper():
    assert train.schedule_steps(6000, TrainSettings()) == {"steps_per_epoch": 750, "total_steps": 2250,
                                                           "warmup_steps": 67}
    assert train.schedule_steps(16307, TrainSettings(epochs=5)) == {"steps_per_epoch": 2039, "total_steps": 10195,
                                                                   "warmup_steps": 305}


def test_linear_schedule_with_warmup_lr_at_step_k():
    optimizer, scheduler = train.build_optimizer(tiny_model(), TrainSettings(), total_steps=2250)
    lrs = []
    for _ in range(1001):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 0.0
    assert lrs[10] == pytest.approx(2e-6 * 10 / 67)
    assert lrs[67] == pytest.approx(2e-6)
    assert lrs[1000] == pytest.approx(2e-6 * (2250 - 1000) / (2250 - 67))
    group = optimizer.param_groups[0]
    assert (group["betas"], group["eps"], group["weight_decay"]) == ((0.9, 0.999), 1e-8, 0.0)


def test_no_decay_groups_are_bias_and_layer_norm_weights():
    model = torch.nn.ModuleDict({"proj": torch.nn.Linear(2, 2), "layer_norm": torch.nn.LayerNorm(2)})
    optimizer, _ = train.build_optimizer(model, TrainSettings(weight_decay=0.1), total_steps=10)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [torch.Size([2, 2])]
    assert {id(p) for p in no_decay["params"]} == {id(model["proj"].bias), id(model["layer_norm"].weight),
                                                   id(model["layer_norm"].bias)}


def test_fine_tune_reduces_loss_and_logs(tok):
    model = tiny_model()
    settings = TrainSettings(lr=1e-2, epochs=3, batch_size=8, micro_batch_size=4, warmup_ratio=0.2, max_length=64,
                             dtype="float32")
    examples = nli_examples(16) + [{"prompt": "x " * 80, "completion": "never seen"}]  # truncated away → dropped
    log = train.fine_tune(model, tok, examples, settings, kind="prompt_completion", progress=False, device="cpu")
    assert (log["total_steps"], log["warmup_steps"], log["n_dropped"], len(log["loss"])) == (6, 1, 1, 6)
    assert log["lr"] == pytest.approx([0.0, 1e-2, 8e-3, 6e-3, 4e-3, 2e-3])
    assert log["loss"][-1] < log["loss"][0] - 1.0
    assert log["target_tokens"] == 3 * (6 * 3 + 5 * 2 + 5 * 2) and log["device"] == "cpu"
    assert not model.training


def test_fine_tune_refuses_bad_input(tok):
    with pytest.raises(ValueError, match="load it in float32"):
        train.fine_tune(tiny_model().to(torch.bfloat16), tok, nli_examples(2), TrainSettings(),
                        kind="prompt_completion", device="cpu")
    with pytest.raises(ValueError, match="multiple of micro_batch_size 3"):
        train.fine_tune(tiny_model(), tok, nli_examples(2), TrainSettings(micro_batch_size=3),
                        kind="prompt_completion", device="cpu")
    with pytest.raises(ValueError, match="no trainable example"):
        train.fine_tune(tiny_model(), tok, [{"prompt": "x " * 80, "completion": "y"}], TrainSettings(max_length=8),
                        kind="prompt_completion", device="cpu")


def test_save_fine_tuned_writes_bf16_and_leaves_model_fp32(tok, tmp_path):
    from transformers import AutoModelForCausalLM

    model = tiny_model()
    train.save_fine_tuned(model, tok, tmp_path / "ft")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ft", dtype="auto")
    assert loaded.dtype == torch.bfloat16 and model.dtype == torch.float32
    assert torch.equal(loaded.model.embed_tokens.weight, model.model.embed_tokens.weight.to(torch.bfloat16))
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()  # still tied
    assert (tmp_path / "ft" / "tokenizer.json").exists()


def test_fine_tune_a_hub_revision_offline(offline_olmo_hub, tmp_path):
    """The paper's path: load allenai/OLMo-1B-hf@step424000 (tiny stand-in in an offline HF cache), fine-tune, save."""
    from transformers import AutoModelForCausalLM

    from amuro_utils.models import ladder

    model, tokenizer, provenance = ladder.load("olmo-1b", "step424000", device="cpu", dtype="float32")
    assert provenance["revision"] == "step424000-tokens1778B"
    before = model.model.embed_tokens.weight.detach().clone()
    settings = TrainSettings(lr=1e-3, epochs=1, batch_size=4, micro_batch_size=2, max_length=64, dtype="bfloat16")
    log = train.fine_tune(model, tokenizer, nli_examples(8), settings, kind="prompt_completion", progress=False,
                          device="cpu")
    assert (log["total_steps"], log["mixed_precision"]) == (2, "no")  # bf16 autocast only on a GPU
    assert not torch.equal(before, model.model.embed_tokens.weight)
    train.save_fine_tuned(model, tokenizer, tmp_path / "ft")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ft", dtype="auto")
    assert torch.equal(reloaded.model.embed_tokens.weight, model.model.embed_tokens.weight.to(torch.bfloat16))


# ---------------------------------------------------------------------------------------------------------------
# fine-tuning fits, and LoRA


def test_fine_tuning_fits_16_examples_and_reproduces_their_completions(tok):
    """The tiny profile's failure was training stopped far too early, not a loop that cannot learn: 16 real SocialIQa
    question-generation examples are fitted below 1 nat/token and reproduced by greedy decoding."""
    from amuro_utils.data import tasks
    from amuro_utils.models import evaluate

    dataset = tasks.get("socialiqa_train")
    rows = tasks.sample_train("socialiqa_train", n=16)
    examples = [{"prompt": tasks.render(dataset, r, "default"), "completion": r["target"]} for r in rows]
    model = tiny_model()
    settings = TrainSettings(lr=1e-2, epochs=60, batch_size=8, micro_batch_size=8, warmup_ratio=0.03,
                             max_length=256, dtype="float32")
    log = train.fine_tune(model, tok, examples, settings, kind="prompt_completion", progress=False, device="cpu")
    assert log["loss"][0] > 9 and log["loss"][-1] < 1.0
    # Decoded from the context training saw: the prompt's trailing space belongs to the completion's first token
    # (" Why"), as in the paper's encoding (PROTOCOL §3), so the prompt is cut before it.
    outputs, _ = evaluate.generate(model, tok, [e["prompt"][:-1] for e in examples], max_new_tokens=40)
    reproduced = [o.strip() == e["completion"].strip() for o, e in zip(outputs, examples)]
    assert sum(reproduced) >= 14, list(zip(outputs, [e["completion"] for e in examples]))


def test_lora_trains_only_the_adapter_saves_it_small_and_merges_for_identical_evaluation(tok, tmp_path):
    from amuro_utils.config.profiles import LoraSettings

    base_weight = tiny_model().model.layers[0].self_attn.q_proj.weight.detach().clone()
    peft_model = train.attach_lora(tiny_model(), LoraSettings(rank=4, alpha=8.0), seed=0)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    settings = TrainSettings(lr=1e-2, epochs=4, batch_size=8, micro_batch_size=8, max_length=64, dtype="float32")
    log = train.fine_tune(peft_model, tok, nli_examples(16), settings, kind="prompt_completion", progress=False,
                          device="cpu")
    assert log["loss"][-1] < log["loss"][0]
    train.save_adapter(peft_model, tok, tmp_path / "adapter")
    adapter = (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size
    full = sum(p.numel() for p in tiny_model().parameters()) * 4
    assert adapter < full / 20  # rank-4 q/k/v/o adapters only
    merged = train.merge_lora(peft_model)
    assert type(merged).__name__ == "OlmoForCausalLM"  # evaluated by the very code full fine-tuning uses
    assert not torch.equal(merged.model.layers[0].self_attn.q_proj.weight, base_weight)
    reloaded = train.load_lora(tiny_model(), tmp_path / "adapter")
    ids = torch.tensor([tok("### Input_1: a\n ### Inference:")["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, merged(ids).logits, rtol=1e-5, atol=1e-5)


def test_lora_refuses_targets_that_do_not_exist_and_names_those_that_do():
    from amuro_utils.config.profiles import LoraSettings

    with pytest.raises(ValueError, match=r"\['c_attn'\] are not in OlmoForCausalLM; its linear modules are "
                                         r"\['down_proj', 'gate_proj', 'k_proj', 'lm_head', 'o_proj'"):
        train.attach_lora(tiny_model(), LoraSettings(target_modules=("q_proj", "c_attn")), seed=0)


# ---------------------------------------------------------------------------------------------------------------
# beyond the paper: the zero-step loss, evaluations along fine-tuning, fine-tuning to convergence


def _fitting_settings(**changes):
    return TrainSettings(**{"lr": 1e-2, "epochs": 3, "batch_size": 8, "micro_batch_size": 4, "warmup_ratio": 0.2,
                            "max_length": 64, "dtype": "float32", **changes})


@pytest.mark.parametrize("normalization", ["sequence_mean", "token_mean"])
def test_zero_step_loss_is_the_training_objective_before_any_update(tok, normalization):
    settings = _fitting_settings(loss_normalization=normalization)
    examples = nli_examples(16)
    encoded = train.encode_examples(tok, examples, kind="prompt_completion", max_length=64)
    per_seq = [tiny_model()(**train.collate([x], 1)).loss.item() for x in encoded]  # transformers' own mean loss
    n_targets = [sum(y != -100 for y in x["labels"][1:]) for x in encoded]
    expected = (sum(per_seq) / len(per_seq) if normalization == "sequence_mean"
                else sum(l * n for l, n in zip(per_seq, n_targets)) / sum(n_targets))
    log = train.fine_tune(tiny_model(), tok, examples, settings, kind="prompt_completion", progress=False,
                          device="cpu")
    assert log["zero_step_loss"] == pytest.approx(expected, rel=1e-5)
    assert log["zero_step_loss"] == pytest.approx(train.completion_loss(tiny_model(), tok, examples, settings,
                                                                         kind="prompt_completion"), rel=1e-6)


def test_points_along_fine_tuning_change_nothing_of_the_training(tok):
    """The callback sees the model after the optimizer step each fraction falls on, in eval mode; the loss curve and
    the final weights are those of a run without it."""
    settings, examples = _fitting_settings(), nli_examples(16)  # 2 steps per epoch, 6 in all
    plain = tiny_model()
    reference = train.fine_tune(plain, tok, examples, settings, kind="prompt_completion", progress=False,
                                device="cpu")
    seen = []

    def look(fraction, step, model):
        assert not model.training
        seen.append((fraction, step, model.model.embed_tokens.weight.detach().clone()))
        model.model.embed_tokens.weight.sum().item()  # reading it changes nothing

    watched = tiny_model()
    log = train.fine_tune(watched, tok, examples, settings, kind="prompt_completion", progress=False, device="cpu",
                          points=(0.25, 0.5, 1.0), on_point=look)
    assert [(f, s) for f, s, _ in seen] == [(0.25, 2), (0.5, 3), (1.0, 6)]  # round(1.5) = 2, round(3) = 3
    assert train.point_steps((0.01, 0.25, 0.5, 1.0), 6) == [1, 2, 3, 6]
    assert log["loss"] == reference["loss"] and log["lr"] == reference["lr"]
    for a, b in zip(watched.parameters(), plain.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(seen[-1][2], watched.model.embed_tokens.weight)  # the last point is the fine-tuned model
    assert not torch.equal(seen[0][2], seen[1][2])


def test_early_stopping_stops_where_a_planted_validation_curve_turns():
    curve = [5.0, 4.0, 3.0, 2.5, 2.6, 2.7, 2.8, 2.9]  # improves until the 4th evaluation, then rises
    stopper = train.EarlyStopping(patience=2)
    decisions = [stopper.update(step, loss) for step, loss in enumerate(curve, start=1)]
    assert [stop for _, stop in decisions].index(True) == 5  # two evaluations after the turn
    assert (stopper.best_step, stopper.best_loss) == (4, 2.5)
    slow = train.EarlyStopping(patience=2, min_delta=0.6)  # 3.0 → 2.5 is not enough of an improvement
    assert [slow.update(s, v)[1] for s, v in enumerate(curve, start=1)].index(True) == 4 and slow.best_step == 3
    assert train.evaluation_steps(10, 1) == {10} and train.evaluation_steps(10, 3) == {3, 7, 10}


def test_fine_tuning_to_convergence_stops_at_the_turn_and_keeps_the_best_weights(tok):
    """A planted validation curve (one value per evaluation) that turns at the 3rd evaluation: training stops two
    evaluations later and restores the weights of the 3rd."""
    from amuro_utils.config.profiles import ConvergeSettings

    curve = iter([3.0, 2.0, 1.0, 1.5, 1.8, 9.0, 9.0])
    weights = {}

    def validate(model):
        weights[len(weights) + 1] = model.model.embed_tokens.weight.detach().clone()
        return next(curve)

    model = tiny_model()
    settings = _fitting_settings(epochs=2)  # horizon: max_epochs 8 → 16 steps, one evaluation per epoch (2 steps)
    log = train.fine_tune(model, tok, nli_examples(16), settings, kind="prompt_completion", progress=False,
                          device="cpu", converge=ConvergeSettings(max_epochs=8, patience=2), validate=validate)
    assert [v["step"] for v in log["validation"]] == [2, 4, 6, 8, 10]
    assert (log["best_step"], log["stopped_step"], log["kept_step"], log["stopped_early"]) == (6, 10, 6, True)
    assert log["total_steps"] == 16 and len(log["loss"]) == 10 and log["epochs_horizon"] == 8
    assert torch.equal(model.model.embed_tokens.weight, weights[3])
    with pytest.raises(ValueError, match="needs `validate`"):
        train.fine_tune(tiny_model(), tok, nli_examples(4), settings, kind="prompt_completion", device="cpu",
                        converge=ConvergeSettings())
