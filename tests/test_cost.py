"""The GPU-hour arithmetic and the pre-flight refusals (all offline, CPU)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from amuro_utils.config.profiles import PAPER, TINY, FineTune, TrainSettings
from amuro_utils.data import tasks
from amuro_utils.study import cost, plan


@pytest.fixture(scope="module")
def throughput():
    return cost.load_throughput()


def _job(profile, train):
    run = FineTune("mnli", "mnli", "prompt_completion", 80, None, train)
    return plan.Job("sft", "main", "mnli", (("rte", "default"), ("xsum", "default")), (run,), profile)


def test_throughput_file_is_a_labelled_estimate_with_consistent_derived_rates(throughput):
    entry = throughput["entry"]
    assert entry["source"] == "estimate-flops" and "ESTIMATE" in entry["label"]
    derived = cost.flops_derived(entry, throughput["models"]["olmo-1b"])
    assert derived == pytest.approx(entry["derived"])
    assert derived["train_tokens_per_s"] == pytest.approx(989.4e12 * 0.35 / (6 * 1.18e9))  # ≈ 48,913
    assert derived["decode_weight_read_s"] == pytest.approx(2 * 1.18e9 / 3.35e12)
    # Every set and training set the paper profile touches has a workload entry.
    sets = {s for j in plan.jobs(PAPER) for s, _ in j.evals}
    assert sets <= set(throughput["workload"]["eval_sets"])
    assert throughput["workload"]["eval_sets"]["qqp"]["n"] == 390965  # SetFit/qqp test (the paper's)
    assert throughput["workload"]["eval_sets"]["qqp_glue"]["n"] == 40430  # GLUE QQP validation (paper-fixed)


def _toy_throughput():
    """Round numbers so the arithmetic can be checked by hand."""
    entry = {"gpu": "toy", "source": "estimate-flops", "peak_bf16_flops": 1e15, "hbm_bytes_per_s": 1e12,
             "mfu_train": 0.5, "mfu_prefill": 0.5, "train_bytes_per_param": 16, "optimizer_bytes_per_param": 28,
             "train_micro_step_overhead_s": 0.01, "forward_overhead_s": 0.001, "decode_step_overhead_s": 0.002,
             "vllm_decode_batch": 100, "vllm_decode_step_overhead_s": 0.0005}
    workload = {"generated_tokens": 10,
                "eval_sets": {"rte": {"n": 100, "query_tokens": 50, "target_tokens": 1, "query_std": 0},
                              "xsum": {"n": 20, "query_tokens": 100, "target_tokens": 9, "query_std": 0}},
                "train_sets": {"mnli": {"n_full": 1000, "tokens": 40, "std": 0}}}
    return {"models": {"olmo-1b": {"params": 1e9, "kv_bytes_per_token": 1000, "hidden": 2048, "layers": 16,
                                   "vocab": 50304, "download_bytes": 4.7e9}},
            "hardware": [entry], "entry": entry, "workload": workload}


def test_estimate_arithmetic_by_hand():
    tp = _toy_throughput()
    profile = replace(PAPER, eval_batch_size=10, dynamics=None)  # the paper's own work (beyond it: below)
    job = _job(profile, TrainSettings(epochs=2, batch_size=8, micro_batch_size=1))
    seconds = cost.breakdown(job, tp)
    # Training: 160 micro-steps of 40 tokens; compute 6e9·6400/5e14 = 0.0768 s < memory 160·16e9/1e12 = 2.56 s;
    # + 160 × 10 ms overhead + 20 optimizer steps × 28e9/1e12 s; + the zero-step loss, a forward pass over the 80
    # examples' 3,200 tokens at 2e9 FLOP each, 5e14 FLOP/s.
    assert seconds["train"] == pytest.approx(2.56 + 1.6 + 20 * 0.028 + 2e9 * 3200 / 5e14)
    # rte: 4-shot prompt = 5·50 + 4·2 = 258 tokens; 100 prompts in 10 batches.
    assert seconds["classification"] == pytest.approx(max(2e9 * 100 * 258 / 5e14, 10 * 2e-3) + 10 * 0.001)
    # xsum: prompt 5·100 + 4·10 = 540; 2 batches of 10; 10 decode steps reading weights + KV of 540 + 5 tokens.
    prefill = max(2e9 * 20 * 540 / 5e14, 2 * 2e-3) + 2 * 0.001
    step = (2e9 + 10 * 545 * 1000) / 1e12 + 0.002
    assert seconds["generation"] == pytest.approx(prefill + 2 * 10 * step)
    # its continuous reading: one forward pass over each prompt and its 9-token reference, 20 × 549 tokens
    assert seconds["continuous"] == pytest.approx(max(2e9 * 20 * 549 / 5e14, 2 * 2e-3) + 2 * 0.001)
    assert cost.estimate(job, tp) == pytest.approx(sum(seconds.values()) / 3600)
    # vLLM with prefix caching: demos (4·110 = 440 tokens) prefilled once; one decode batch of up to 100.
    fast = cost.breakdown(job, tp, cost.Knobs(generation_engine="vllm", prefix_cache=True))
    prefill = max(2e9 * (20 * 100 + 440) / 5e14, 2 * 2e-3) + 2 * 0.001
    assert fast["generation"] == pytest.approx(prefill + 10 * ((2e9 + 20 * 545 * 1000) / 1e12 + 0.0005))


def test_measured_entry_wins_and_is_used_directly(tmp_path):
    tp = _toy_throughput()
    measured = {"gpu": "toy", "source": "measured", "train_tokens_per_s": 1000.0, "prefill_tokens_per_s": 1e5,
                "prompts_per_s": {"classification": 50.0, "generation": 4.0, "multiple_choice": 20.0},
                "peak_memory_gb": {"train": 30.0, "eval": 12.0}}
    data = {k: v for k, v in tp.items() if k != "entry"}
    data["hardware"] = [tp["entry"], measured]
    path = tmp_path / "throughput.json"
    path.write_text(__import__("json").dumps(data))
    loaded = cost.load_throughput(path, gpu="toy")
    assert loaded["entry"]["source"] == "measured"
    job = _job(replace(PAPER, dynamics=None), TrainSettings(epochs=2))
    assert cost.breakdown(job, loaded) == pytest.approx(
        {"train": (80 * 2 * 40 + 80 * 40 / 3) / 1000, "classification": 100 / 50, "generation": 20 / 4,
         "multiple_choice": 0.0, "continuous": 20 / 50})  # the zero-step forward pass: a third of a training pass;
    # the references' teacher-forced pass: one forward per xsum item, as a classification prompt
    with pytest.raises(ValueError, match="no throughput entry for gpu 'A100'"):
        cost.load_throughput(path, gpu="A100")


def test_plan_totals_add_up(throughput):
    frame, total = cost.plan_table(PAPER, throughput)
    stages = [c for c in frame.columns if c.endswith("_h")]
    assert len(frame) == 8 + 4 * 8 + 9 and total  # instruction tuning also at step550000 (Springer S2) == pytest.approx(frame["gpu_hours"].sum())
    assert frame[stages].sum(axis=1).to_numpy() == pytest.approx(frame["gpu_hours"].to_numpy())
    assert total == pytest.approx(sum(cost.estimate(j, throughput) for j in plan.jobs(PAPER)))
    knobs = cost.knob_table(PAPER, throughput)
    assert knobs.loc[3, "gpu_hours"] == pytest.approx(total)  # the code's default execution
    assert knobs["gpu_hours"].is_monotonic_decreasing and knobs.loc[0, "gpu_hours"] > 10 * total
    assert knobs["saves_h"].iloc[1:].sum() == pytest.approx(knobs["gpu_hours"].iloc[0] - knobs["gpu_hours"].iloc[-1])


def test_report_states_total_against_paper_and_goal(throughput, capsys):
    cost.main(["--profile", "paper"])
    out = capsys.readouterr().out
    total = cost.plan_table(PAPER, throughput)[1]
    assert f"Total: {total:.1f} GPU-hours (paper: ~1,067 A100-hours; goal: <= 10 H100-hours)." in out
    assert f"exceeds the goal by {total - 10:.1f} h" in out and "estimate-flops" in out
    cost.main(["--profile", "tiny"])
    # a CPU profile is priced in seconds against its budget (data/cpu_throughput.json), not in GPU-hours
    assert "Estimated wall time of profile 'tiny' from scratch on a 2-core CPU" in capsys.readouterr().out
    cost.main(["--profile", "paper-reference"])
    assert "Profile 'paper-reference': 0 jobs, none needing a GPU estimate" in capsys.readouterr().out


def test_seeds_multiply_the_training_cost(throughput):
    one = cost.plan_table(PAPER, throughput)[0]
    three = cost.plan_table(replace(PAPER, seeds=(1, 2, 3)), throughput)[0]
    assert three["train_h"].sum() == pytest.approx(3 * one["train_h"].sum())
    assert three["generation_h"].sum() == pytest.approx(one["generation_h"].sum())


# ---------------------------------------------------------------------------------------------------------------
# pre-flight


def test_preflight_refuses_without_gpu_and_names_the_flag(monkeypatch):
    monkeypatch.delenv(cost.FORCE_CPU_ENV, raising=False)
    monkeypatch.setenv(tasks.ALLOW_UNPINNED_ENV, "1")  # the pins are test_preflight_refuses_unpinned_sources' subject
    job = plan.jobs(PAPER)[8]
    with pytest.raises(cost.PreflightError, match=r"needs a CUDA GPU .* AMURO_FORCE_CPU=1"):
        cost.preflight(PAPER, job, gpu_memory=0, free_disk=10**12)
    monkeypatch.setenv(cost.FORCE_CPU_ENV, "1")
    assert cost.preflight(PAPER, job, gpu_memory=0, free_disk=10**12)["disk_bytes"] == pytest.approx(4.7e9 + 2.36e9)


def test_preflight_refuses_too_little_disk_or_gpu_memory(monkeypatch):
    monkeypatch.delenv(cost.FORCE_CPU_ENV, raising=False)
    monkeypatch.setenv(tasks.ALLOW_UNPINNED_ENV, "1")
    sft, base = plan.jobs(PAPER)[8], plan.jobs(PAPER)[0]
    with pytest.raises(cost.PreflightError, match=r"needs 7\.1 GB of disk .* 1\.0 GB is free.*prune_revision"):
        cost.preflight(PAPER, sft, gpu_memory=80 * 10**9, free_disk=10**9)
    assert cost.preflight(PAPER, base, gpu_memory=80 * 10**9, free_disk=5 * 10**9)["disk_bytes"] == 4.7e9
    # 18 B/param (weights, grads, AdamW, bf16 copy) + activations at 2,048 tokens + fp32 target logits, +10 %.
    need = (18 * 1.18e9 + 34 * 2048 * 2048 * 16 + 4 * 2048 * 50304) * 1.1
    with pytest.raises(cost.PreflightError, match=rf"needs ~{need / 1e9:.1f} GB of GPU memory, the GPU has 16\.0 GB"):
        cost.preflight(PAPER, sft, gpu_memory=16 * 10**9, free_disk=10**12)
    fits = cost.preflight(PAPER, sft, gpu_memory=80 * 10**9, free_disk=10**12)
    assert fits["gpu_memory_bytes"] == pytest.approx(need)


def test_preflight_refuses_unpinned_sources_before_the_download(monkeypatch):
    """A paper job whose datasets are not pinned to a commit stops before its checkpoint is downloaded."""
    monkeypatch.delenv(tasks.ALLOW_UNPINNED_ENV, raising=False)
    sft = next(j for j in plan.jobs(PAPER) if j.task == "xsum")
    unpinned = {key: None for key in tasks.read_pins()}
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins(unpinned))
    with pytest.raises(tasks.UnpinnedSourceError, match=r"EdinburghNLP/xsum@refs/convert/parquet, "
                       r"csebuetnlp/xlsum@refs/convert/parquet, abisee/cnn_dailymail@main, nyu-mll/glue@main, .*"
                       r"python -m amuro_utils\.study\.hubcheck --pin.*--allow-unpinned"):
        cost.preflight(PAPER, sft, gpu_memory=80 * 10**9, free_disk=10**12)
    monkeypatch.setenv(tasks.ALLOW_UNPINNED_ENV, "1")  # run_all.sh --allow-unpinned
    assert cost.preflight(PAPER, sft, gpu_memory=80 * 10**9, free_disk=10**12)["disk_bytes"] > 0
    monkeypatch.delenv(tasks.ALLOW_UNPINNED_ENV)
    # Pinned (a test commit id, not a real one): nothing to refuse.
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins({key: "c" * 40 for key in unpinned}))
    assert cost.preflight(PAPER, sft, gpu_memory=80 * 10**9, free_disk=10**12)["disk_bytes"] > 0


def test_preflight_passes_cpu_profiles():
    job = plan.jobs(TINY)[0]
    assert cost.preflight(TINY, job, gpu_memory=0, free_disk=10**8) == {"disk_bytes": 0.0, "gpu_memory_bytes": 0.0}


# ---------------------------------------------------------------------------------------------------------------
# CPU budget of the local profiles


def _toy_rates(profile):
    """Round per-unit rates for every set and train set of `profile`: 0.01 s per item, 0.001 s per example-epoch."""
    sets = {s for j in plan.jobs(profile) for s, _ in j.evals}
    trains = {run.train_set for j in plan.jobs(profile) for run in j.fine_tunes}
    return {"eval_limit": 100, "eval_s_per_item": {s: (0.01, 1000) for s in sets},
            "train_s_per_example_epoch": {t: 0.001 for t in trains}, "pretrain_s_per_token": 1e-4,
            "probe_s_per_row": 0.002, "heldout_s_per_token": 1e-3,
            "overhead": {"pretrain_probe": {"per_unit_s": 5.0}, "sft": {"per_unit_s": 2.0},
                         "instruction_tuning": {"per_unit_s": 3.0}, "format": {"fixed_s": 7.0},
                         "transfer": {"fixed_s": 7.0}, "ood": {"fixed_s": 7.0}, "beyond": {"fixed_s": 9.0}}}


def test_cpu_estimate_arithmetic_by_hand():
    rates = _toy_rates(TINY)
    frame = cost.cpu_estimate(TINY, rates)
    by_job = dict(zip(frame["job"], frame["seconds"]))
    st = TINY.tiny_ladder
    n_ckpts = len(TINY.ckpts)
    base_items = sum(len(j.evals) for j in plan.jobs(TINY) if j.notebook == "pretrain_probe") * TINY.eval_limit
    probed = (TINY.probes.n_train + TINY.probes.n_test) * 2  # MNLI and QQP: the classification tasks
    assert by_job["01_pretrain_probe"] == pytest.approx(1e-4 * st.total_steps * st.batch_size * st.seq_len
                                                        + 0.01 * base_items + 5.0 * n_ckpts
                                                        + 0.002 * probed * n_ckpts)
    sft = [j for j in plan.jobs(TINY) if j.notebook == "sft"]
    # along fine-tuning: at each point, the dynamics plan on its first 25 items and 2,048 held-out tokens
    along = {t.name: 3 * (0.01 * 25 * len(plan.dynamics_plan(TINY, t)) + 1e-3 * 2048) for t in TINY.tasks}
    expected = sum(0.001 * run.n_train * run.train.epochs + 2.0 + 0.01 * TINY.eval_limit * len(j.evals)
                   + along[j.task] for j in sft for run in j.fine_tunes)
    assert by_job["03_sft"] == pytest.approx(expected)
    assert by_job["06_ood"] == 7.0 and by_job["07_beyond"] == 9.0 and len(frame) == len(plan.notebook_jobs(TINY))
    # each analysis beyond the paper, priced apart and switched per profile
    assert cost.beyond_cpu(TINY, rates) == pytest.approx(
        {"probes": 0.002 * probed * n_ckpts, "dynamics": n_ckpts * sum(along.values()), "converge": 0.0})
    off = replace(TINY, probes=None, dynamics=None)
    assert cost.beyond_cpu(off, rates) == {"probes": 0.0, "dynamics": 0.0, "converge": 0.0}
    assert cost.cpu_estimate(off, rates)["seconds"].sum() == pytest.approx(
        frame["seconds"].sum() - sum(cost.beyond_cpu(TINY, rates).values()))
    converging = cost.beyond_cpu(replace(TINY, converge=True), rates)["converge"]
    horizon = {t.name: 2 * t.train.epochs for t in TINY.tasks} | {TINY.instruction.name: 16}
    n_train = {t.name: t.n_train for t in TINY.tasks} | {TINY.instruction.name: TINY.instruction.n_train}
    # to convergence: at most twice the fixed epochs, a validation pass (1/3 of a step) per epoch, the Learned-in-FT
    # sets scored (one per fine-tune here)
    assert converging == pytest.approx(n_ckpts * sum(0.001 * (n_train[name] * horizon[name] + horizon[name] * 64 / 3)
                                                     + 0.01 * TINY.eval_limit for name in horizon))
    assert "converge off (on: +" in cost.budget_report(TINY, rates)
    # a set the calibration never measured cannot be priced: None, and the budget line says how to calibrate
    rates["eval_s_per_item"].pop("xsum")
    assert cost.cpu_estimate(TINY, rates) is None
    assert "--calibrate tiny" in cost.budget_report(TINY, rates)
    assert cost.cpu_estimate(PAPER, _toy_rates(TINY)) is None  # GPU profiles are priced in GPU-hours


def test_the_continuous_readings_extra_pass_is_priced_on_the_generation_sets():
    rates = _toy_rates(TINY)
    plain = cost.cpu_estimate(TINY, rates).set_index("job")["seconds"]
    # before a calibration has measured it: the benchmark's ratio to each generation set's own scoring time
    rates["continuous_ratio"] = {"generation": 0.5}
    with_ratio = cost.cpu_estimate(TINY, rates).set_index("job")["seconds"]
    generation = {s for j in plan.jobs(TINY) for s, _ in j.evals if tasks.get(s).kind == "generation"}
    scored = sum(max(1, len(j.fine_tunes)) * sum(s in generation for s, _ in j.evals)
                 for j in plan.jobs(TINY) if j.notebook == "sft")
    assert generation == {"xsum", "socialiqa", "sciq"}
    assert with_ratio["03_sft"] - plain["03_sft"] == pytest.approx(0.5 * 0.01 * TINY.eval_limit * scored)
    assert with_ratio["04_format"] == plain["04_format"]  # figures only
    # measured per set by a calibration, it wins over the ratio; the evaluations along fine-tuning record none
    rates["continuous_s_per_item"] = {s: 0.002 for s in generation}
    measured = cost.cpu_estimate(TINY, rates).set_index("job")["seconds"]
    assert measured["03_sft"] - plain["03_sft"] == pytest.approx(0.002 * TINY.eval_limit * scored)
    assert cost.beyond_cpu(TINY, rates)["dynamics"] == cost.beyond_cpu(TINY, _toy_rates(TINY))["dynamics"]


def test_the_paper_plan_prices_each_analysis_beyond_the_paper_and_its_switch(throughput):
    base = next(j for j in plan.jobs(PAPER) if j.kind == "base")
    sft = next(j for j in plan.jobs(PAPER) if j.kind == "sft" and j.task == "xsum")
    probes = cost.breakdown(base, throughput)["probes"]
    rows = (PAPER.probes.n_train + PAPER.probes.n_test) * 2  # MNLI and PAWS
    # forward passes over the probed rows' tokens (MNLI 58.4, PAWS 62.5 per row): well under a second on an H100
    assert probes == pytest.approx(rows / 2 * (58.4 + 62.5) / cost._forward_rate(throughput, PAPER)) and probes < 1
    along = cost.breakdown(sft, throughput)["dynamics"]
    plain = replace(PAPER, dynamics=None)
    assert "dynamics" not in cost.breakdown(replace(sft, profile=plain), throughput)
    evals = sum(v for k, v in cost.breakdown(sft, throughput).items() if k in ("classification", "generation"))
    assert 0 < along < evals  # three points at 500 items per set, against every set in full
    converge = [j for j in plan.jobs(replace(PAPER, converge=True)) if j.kind == "converge"]
    assert len(converge) == 8 * 5 and set(cost.breakdown(converge[0], throughput)) == {"converge"}
    line = cost.beyond_gpu_line(PAPER, throughput)
    assert "dynamics " in line and "converge off (on: +" in line


def test_tiny_profile_fits_its_budget_by_the_committed_measurement():
    """data/cpu_throughput.json holds rates measured from a finished tiny run on a 2-core machine."""
    frame = cost.cpu_estimate(TINY)
    assert frame is not None, "data/cpu_throughput.json lacks a rate for a set of the tiny profile: recalibrate"
    assert TINY.budget_s == 600 and frame["seconds"].sum() <= TINY.budget_s
    assert "within its budget of 600 s" in cost.budget_report(TINY)
    # the hour-long study's larger body is priced with the factors its own run measured, against its hour
    from amuro_utils.study import overrides

    small = overrides.load(Path(__file__).resolve().parents[1] / "benchmarks" / "small_study.toml")
    assert cost.cpu_estimate(small)["seconds"].sum() <= small.budget_s == 3600


def test_a_larger_body_is_priced_with_its_measured_cost_per_kind_of_work(tmp_path):
    rates = _toy_rates(TINY)
    bigger = replace(TINY, tiny_ladder=replace(TINY.tiny_ladder, hidden_size=128, num_layers=4, num_heads=4,
                                               intermediate_size=512))
    assert cost.body_of(TINY) == "64x2" and cost.body_of(bigger) == "128x4" and cost.body_of(PAPER) is None
    assert cost.cpu_estimate(bigger, rates) is None  # no measured factors for that body: it cannot be priced
    rates["body_cost"] = {"bodies": {"128x4": {"pretrain": 2.0, "train": 3.0, "forward": 5.0}}}
    same, scaled = (cost.cpu_estimate(p, rates).set_index("job") for p in (TINY, bigger))
    st = TINY.tiny_ladder
    ladder = 1e-4 * st.total_steps * st.batch_size * st.seq_len  # the pre-training tokens at the toy rate
    n = sum(j.notebook == "pretrain_probe" for j in plan.jobs(TINY))  # the base checkpoints
    base_evals = sum(0.01 * TINY.eval_limit * len(j.evals) for j in plan.jobs(TINY) if j.notebook == "pretrain_probe")
    probes = 0.002 * (TINY.probes.n_train + TINY.probes.n_test) * 2 * n
    # pre-training × 2; every forward pass (evaluations, probes) and the per-checkpoint overhead × 5
    assert scaled.loc["01_pretrain_probe", "seconds"] == pytest.approx(
        2 * ladder + 5 * (base_evals + probes + 5.0 * n))
    assert same.loc["01_pretrain_probe", "seconds"] == pytest.approx(ladder + base_evals + probes + 5.0 * n)
    assert scaled.loc["07_beyond", "seconds"] == same.loc["07_beyond", "seconds"]  # figures: no model
    assert cost.rates_for(bigger, cost.rates_for(bigger, rates)) == cost.rates_for(bigger, rates)  # scaled once
    # a finished run of that body calibrates its factors against the reference rates, which stay as they were
    reference = {**rates, "pretrain_s_per_token": 1e-4}
    measured = {**_toy_rates(TINY), "pretrain_s_per_token": 3e-4,
                "train_s_per_example_epoch": {k: 4 * v for k, v in rates["train_s_per_example_epoch"].items()},
                "eval_s_per_item": {k: (6 * v, n) for k, (v, n) in rates["eval_s_per_item"].items()}}
    assert cost._body_factors(reference, measured) == pytest.approx({"pretrain": 3.0, "train": 4.0, "forward": 6.0})


def test_a_profile_over_its_budget_is_refused_before_anything_runs(monkeypatch, tmp_path, capsys):
    from amuro_utils.config import paths
    from amuro_utils.run import runner

    monkeypatch.setattr(paths, "RESULTS_ROOT", tmp_path / "results")
    greedy = replace(TINY, name="greedy", ckpts=TINY.rung_labels(), budget_s=60)
    with pytest.raises(cost.BudgetError, match="--over-budget"):
        cost.check_budget(greedy)
    assert runner.run(greedy) == 2
    assert "OVER its budget of 60 s" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()  # refused before the ladder, a record or a marker was written
    assert "OVER its budget" in runner.dry_run(greedy)
