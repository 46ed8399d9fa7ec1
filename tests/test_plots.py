"""plots: one figure per paper figure, drawn from a synthetic frame with the tiny profile's names."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402

from amuro_utils import stats  # noqa: E402
from amuro_utils.config.profiles import ckpt_step, get_profile  # noqa: E402
from amuro_utils.figures import plots

# The tiny profile's tasks and sets on a seven-rung ladder named by its own steps (no named rungs), so that every
# panel has seven known points; the tiny profile's own rung labels are tested in test_rung_ticks_show_the_ladder_step.
TINY = replace(get_profile("tiny"), ckpts=("step10", "step20", "step40", "step60", "step80", "step120", "main"),
               rungs=None)
TICKS = ["10", "20", "40", "60", "80", "120", "main"]


def synthetic(profile=TINY, drop=(), offset=0.0, source="run"):
    """Every cell the profile's figures read, with values whose changes are known exactly.

    In-domain: base 0.30 + 0.05 i, fine-tuned 0.60 + 0.05 i (format k lowers both by 0.01 k). Cross-task: a
    classification task on a generation set = base / 2 (ratio −50 %), a generation task on a classification set =
    base × 1.1 (+10 %). OOD: base 0.5, fine-tuned 0.6. Benchmarks and LLMBar: base 0.5, instruction-tuned 0.7.
    """
    rows = []

    def add(ckpt, eval_set, fine_tune, perf, fmt="default"):
        if (eval_set, fine_tune, ckpt) not in drop:
            rows.append({"model": "tiny-olmo", "ckpt": ckpt, "step": ckpt_step(ckpt), "fine_tune": fine_tune,
                         "method": "none" if fine_tune == "base" else "full", "seed": None if fine_tune == "base" else 42,
                         "eval_set": eval_set, "format": fmt, "shots": profile.shots, "metric": "accuracy",
                         "performance": perf + offset, "std": 0.01, "source": source, "variant": "standard"})

    for i, ckpt in enumerate(profile.ckpts):
        base_id = 0.30 + 0.05 * i
        for task in profile.tasks:
            for eval_set in task.in_domain:
                for k, fmt in enumerate(profile.formats):
                    add(ckpt, eval_set, "base", base_id - 0.01 * k, fmt)
                    add(ckpt, eval_set, task.name, base_id + 0.30 - 0.01 * k, fmt)
            for eval_set in task.ood:
                add(ckpt, eval_set, "base", 0.5)
                add(ckpt, eval_set, task.name, 0.6)
            for other in profile.tasks:
                if other is not task:
                    factor = 0.5 if (task.kind, other.kind) == ("classification", "generation") else 1.1
                    for eval_set in other.in_domain:
                        add(ckpt, eval_set, task.name, base_id * factor)
        it = profile.instruction
        for eval_set in (*it.benchmarks, *it.llmbar):
            add(ckpt, eval_set, "base", 0.5)
            add(ckpt, eval_set, it.name, 0.7)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def frame():
    return synthetic(drop={("mnli_matched", "mnli", "step40")})


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _title(fig) -> str:
    return fig._suptitle.get_text()


def _footnote(fig) -> str:
    return " ".join(t.get_text() for t in fig.texts if t.get_gid() == "footnote")


def _rgba(colour):
    return tuple(np.round(mcolors.to_rgba(colour), 6))


def test_ckpt_labels_and_ladder_ticks():
    assert [plots.ckpt_label(c) for c in ("step1000", "step18000", "step342000", "step738000", "main")] == \
        ["1k", "18k", "342k", "738k", "main"]
    assert [plots.ckpt_label(c) for c in TINY.ckpts] == TICKS
    assert plots.ckpt_label("step1500") == "1500"
    assert plots.metric_label("rougeL") == "ROUGE-L F1" and plots.metric_label("acc_uncond") == "accuracy"


def test_fig3_base_vs_fine_tuned_with_gap_and_footnote(frame):
    fig = plots.fig3_sft(frame, TINY)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["mnli_matched\nfine-tuned on mnli (ID)", "qqp_glue\nfine-tuned on qqp (ID)",
                                               "xsum\nfine-tuned on xsum (ID)",
                                               "socialiqa\nfine-tuned on socialiqa (ID)"]
    base, tuned = axes[0].get_lines()
    assert base.get_linestyle() == "--" and _rgba(base.get_color()) == _rgba("0.45")
    assert tuned.get_linestyle() == "-" and _rgba(tuned.get_color()) == _rgba("#c8102e")
    np.testing.assert_allclose(base.get_ydata(), [0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60])
    assert np.isnan(tuned.get_ydata()[2]) and tuned.get_ydata()[3] == pytest.approx(0.75)
    assert len(axes[0].collections) == 2  # the two ±std bands
    assert [t.get_text() for t in axes[0].get_xticklabels()] == TICKS
    assert axes[0].get_ylabel() == "accuracy"
    assert TINY.figure_note in _title(fig)
    assert _footnote(fig) == "missing cells (drawn as gaps): mnli_matched ← mnli: step40"


def _with_readings(frame: pd.DataFrame) -> pd.DataFrame:
    """The synthetic frame as records with per-item readings: each cell's 4 items average its performance (bits per
    byte 4 − performance, log-probability −1/performance, share = performance); metrics by the sets' kinds."""
    from amuro_utils.data import tasks as registry

    kinds = {"generation": "rougeL", "multiple_choice": "acc_uncond", "classification": "accuracy"}
    spread = np.array([-0.03, -0.01, 0.01, 0.03])
    out = frame.assign(metric=[kinds[registry.get(e).kind] for e in frame["eval_set"]])
    kind = out["metric"].map({"rougeL": "generation", "acc_uncond": "multiple_choice", "accuracy": "classification"})
    out["scores"] = [p + spread for p in out["performance"]]
    out["references"] = [["a", "b", "c", "d"]] * len(out)
    out["predictions"] = [["a", "a", "a", "a"]] * len(out)
    out["gold_bpb"] = [4 - p + spread if k != "classification" else None for p, k in zip(out["performance"], kind)]
    out["gold_logprob"] = [-1 / p + spread if k == "classification" else None for p, k in zip(out["performance"], kind)]
    out["gold_share"] = [p + spread if k != "generation" else None for p, k in zip(out["performance"], kind)]
    return out


def test_fig3_and_fig2_draw_the_continuous_readings_when_asked(frame):
    readings = _with_readings(frame)
    text = plots.fig3_sft(readings, TINY, reading="answer text")
    assert [ax.get_ylabel() for ax in text.axes[:4]] == ["gold label log-probability (nats)"] * 2 + [
        "gold bits per byte (lower = better)"] * 2
    base, tuned = text.axes[2].get_lines()  # xsum: bits per byte 4 − performance, the mean of its items
    np.testing.assert_allclose(base.get_ydata(), 4 - np.array([0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60]))
    np.testing.assert_allclose(tuned.get_ydata(), 4 - np.array([0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90]))
    assert not any(isinstance(a, PathPatch) for a in text.axes[0].get_children())  # no chance or majority line
    assert "\nreading: answer text — how well the gold answer's text is predicted\n" in _title(text)
    share = plots.fig3_sft(readings, TINY, reading="discrimination")  # generation has no discrimination reading
    assert [ax.get_title() for ax in share.axes] == ["mnli_matched\nfine-tuned on mnli (ID)",
                                                     "qqp_glue\nfine-tuned on qqp (ID)"]
    assert share.axes[0].get_ylabel() == "gold share of probability"
    # Fig. 2: panel B reads classification in label log-probability and generation in bits per byte: two panels,
    # so that every panel has one unit
    panels = plots.fig2_answer_text(readings, TINY).axes[:4]
    assert [ax.get_title(loc="left") for ax in panels] == [
        "A  sets learned in pre-training", "B  sets not learned in pre-training: gold label log-probability",
        "B  sets not learned in pre-training: gold bits per byte", "C  LLMBar (instruction following)"]
    assert [line.get_label() for line in panels[0].get_lines()] == [
        "sciq_mc", "hellaswag", "arc_challenge", "arc_easy", "openbookqa"]
    assert [line.get_label() for line in panels[2].get_lines()] == ["xsum", "socialiqa", "boolq"]
    assert [ax.get_ylabel() for ax in panels] == ["gold bits per byte (lower = better)",
                                                  "gold label log-probability (nats)",
                                                  "gold bits per byte (lower = better)",
                                                  "gold label log-probability (nats)"]
    # a profile whose tasks all generate has no discrimination reading to draw; records without readings (written
    # before them) and the release draw nothing: None, no empty figure
    generation_only = replace(TINY, tasks=(TINY.task("socialiqa"),))
    assert plots.fig3_discrimination(readings, generation_only) is None
    # … also when no record of its fine-tuning method has the reading (LoRA on question generation only)
    tuned_generation = (readings["fine_tune"] == "socialiqa") & (readings["metric"] == "rougeL")
    lora = readings[(readings["fine_tune"] == "base") | tuned_generation].assign(
        method=lambda f: f["method"].replace("full", "lora"))
    assert plots.fig3_discrimination(lora, replace(generation_only, methods=("lora",))) is None
    assert plots.fig3_answer_text(readings, generation_only).axes[0].get_title() == \
        "socialiqa\nfine-tuned on socialiqa (ID)"
    assert plots.fig2_discrimination(frame.assign(scores=None), TINY) is None
    assert plots.fig3_answer_text(synthetic(source="paper"), TINY) is None


def test_fig3_overlay_draws_dotted_twins(frame):
    overlay = synthetic(offset=0.02, source="paper")
    fig = plots.fig3_sft(frame, TINY, overlay=overlay)
    lines = fig.axes[1].get_lines()
    assert [line.get_linestyle() for line in lines] == ["--", ":", "-", ":"]
    np.testing.assert_allclose(lines[1].get_ydata(), lines[0].get_ydata() + 0.02)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["base", "fine-tuned", "paper (released)",
                                                                  plots.INTERVAL_LABEL]


def test_line_figures_draw_the_cells_95_percent_interval(frame):
    """Figs. 2–5 band each curve by the cell's 95 % interval from the resamples the verdicts read (stats.Study),
    not by ± one record standard error."""
    study = stats.Study(frame, TINY)
    for fig, eval_set, fine_tune, ax_index in ((plots.fig3_sft(study, TINY), "mnli_matched", "mnli", 0),
                                               (plots.fig2_pretrain_probe(study, TINY), "sciq_mc", "base", 0)):
        spine = [stats.cell_interval(study.cells, (eval_set, fine_tune, c, "default")) for c in TINY.ckpts]
        drawn = [np.vstack([p.vertices for p in band.get_paths()])[:, 1] for band in fig.axes[ax_index].collections
                 if band.get_paths() and len(band.get_paths()[0].vertices) > 2]
        assert any(y.min() == pytest.approx(np.nanmin([lo for _, lo, _ in spine]))
                   and y.max() == pytest.approx(np.nanmax([hi for *_, hi in spine])) for y in drawn)
        point, lo, hi = spine[0]
        # every record's std is 0.01: the band is ± 1.96 std (the release's N(p, std²) resamples), not ± 1 std
        assert (hi - lo) / 2 == pytest.approx(1.96 * 0.01, rel=0.05) and lo < point < hi
        plt.close(fig)


def test_fig2_panels_take_names_from_the_profile(frame):
    fig = plots.fig2_pretrain_probe(frame, TINY)
    panels = fig.axes[:3]
    labels = [[line.get_label() for line in ax.get_lines()] for ax in panels]
    assert labels == [["sciq_mc", "hellaswag", "arc_challenge", "arc_easy", "openbookqa"],
                      ["mnli_matched", "qqp_glue", "xsum", "socialiqa", "boolq"],
                      list(TINY.instruction.llmbar)]
    assert all(line.get_linestyle() == "--" for ax in panels for line in ax.get_lines())
    # titled by the paper's grouping, not by what the lines are expected to do
    assert [ax.get_title(loc="left") for ax in panels] == [
        "A  sets learned in pre-training", "B  sets not learned in pre-training", "C  LLMBar (instruction following)"]
    assert TINY.figure_note in _title(fig) and _footnote(fig) == ""


@pytest.mark.parametrize("profile", [TINY, get_profile("tiny")], ids=["seven rungs", "tiny profile's rungs"])
def test_fig2_legends_clear_the_tick_labels(profile):
    fig = plots.fig2_pretrain_probe(synthetic(profile), profile)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [leg for ax in fig.axes for leg in ([ax.get_legend()] if ax.get_legend() else [])]
    assert len(legends) == 3
    for panel in fig.axes[:3]:
        texts = [*panel.get_xticklabels(), panel.xaxis.label]
        boxes = [t.get_window_extent(renderer) for t in texts if t.get_text()]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert not any(box.overlaps(other) for other in boxes), "a legend overlaps a panel's x labels"
        ticks = sorted((b for b in boxes[:-1]), key=lambda b: b.x0)
        assert all(a.x1 <= b.x0 + 1 for a, b in zip(ticks, ticks[1:])), "x tick labels overlap each other"
    plt.close(fig)


def test_fig4_drops_sets_without_data_and_lists_them(frame):
    df = frame[frame["eval_set"] != "llmbar_Adversarial_GPTOut"]
    fig = plots.fig4_instruction_tuning(df, TINY)
    assert len(fig.axes) == 10
    assert fig.axes[-1].get_title() == "llmbar_Adversarial_GPTInst\nLLMBar (instruction following)"
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), [0.7] * 7)
    assert "llmbar_Adversarial_GPTOut: no data" in _footnote(fig)
    assert TINY.figure_note in _title(fig)


def test_fig5_hue_is_format_and_style_is_kind(frame):
    fig = plots.fig5_format(frame, TINY)
    assert len(fig.axes) == len(TINY.tasks)
    lines = fig.axes[1].get_lines()  # qqp
    assert [(_rgba(line.get_color()), line.get_linestyle()) for line in lines] == [
        (_rgba(plots.FORMAT_COLOURS[f]), style) for f in TINY.formats for style in ("--", "-")]
    np.testing.assert_allclose(lines[2].get_ydata()[:2], [0.29, 0.34])  # instruct base = default − 0.01


def _bar_colours_by_label(ax):
    """{legend label: facecolour} of the bars, in drawing order."""
    return {c.get_label(): _rgba(c.patches[0].get_facecolor()) for c in ax.containers
            if isinstance(c, BarContainer)}


def test_checkpoint_colours_are_identical_across_figures(frame):
    expected = {plots.ckpt_label(c): _rgba(v) for c, v in plots.ckpt_colours(TINY).items()}
    figs = [plots.fig3b_gain_bars(frame, TINY), plots.fig6_transfer(frame, TINY), plots.fig7_ood(frame, TINY)]
    for ax in (figs[0].axes[0], figs[1].axes[0], figs[1].axes[3], figs[2].axes[0]):
        assert _bar_colours_by_label(ax) == expected
    # early checkpoints dark, the final one light: viridis from 0 to 0.9 along the ladder
    colours = plots.ckpt_colours(TINY)
    assert _rgba(colours[TINY.ckpts[0]]) == _rgba(plt.get_cmap("viridis")(0.0))
    assert _rgba(colours["main"]) == _rgba(plt.get_cmap("viridis")(0.9))
    assert len(set(expected.values())) == len(TINY.ckpts)


def test_fig6_bars_and_mean_relative_changes(frame):
    fig = plots.fig6_transfer(frame, TINY)
    raw_cg, raw_gc, rel_cg, rel_gc = fig.axes
    assert sum(len(c) for c in raw_cg.containers) == 4 * 7  # (xsum, socialiqa) ← (mnli, qqp), 7 ckpts
    assert [t.get_text() for t in raw_cg.get_xticklabels()] == ["xsum\n← mnli", "socialiqa\n← mnli",
                                                               "xsum\n← qqp", "socialiqa\n← qqp"]
    heights = [bar.get_height() for bar in rel_cg.containers[0]]
    np.testing.assert_allclose(heights, [-50.0] * 4)
    assert rel_cg.get_title() == "Class→Gen: mean relative change = -50.00 %\n95 % CI [-51.8, -48.1], 28 pair × checkpoint rows"
    # mnli_matched ← (xsum, socialiqa) at step40 stays: only the mnli fine-tune is missing there
    assert rel_gc.get_title() == "Gen→Class: mean relative change = +10.00 %\n95 % CI [+7.2, +12.8], 28 pair × checkpoint rows"
    assert raw_cg.get_ylabel() == "Δ vs base (raw score)" and rel_cg.get_ylabel() == "Δ vs base (% of base)"


def test_fig7_ood_bars_and_group_ci(frame):
    fig = plots.fig7_ood(frame, TINY)
    per_set, groups = fig.axes
    assert [t.get_text() for t in per_set.get_xticklabels()] == [
        "rte\n← mnli", "cb\n← mnli", "stsb_glue\n← qqp", "mrpc\n← qqp", "sciq\n← socialiqa"]
    np.testing.assert_allclose([b.get_height() for c in per_set.containers for b in c], [0.1] * 35)
    assert [t.get_text() for t in groups.get_xticklabels()] == ["NLI\n(n=14)", "Paraphrase\nDetection\n(n=14)",
                                                               "Question\nGeneration\n(n=7)"]
    np.testing.assert_allclose([b.get_height() for b in groups.patches], [0.1] * 3)


def test_fig3b_gain_bars_group_means(frame):
    fig = plots.fig3b_gain_bars(frame, TINY)
    ax = fig.axes[0]
    # step10 bars: Learned in FT = tiny's own list (mnli_matched, qqp, xsum, socialiqa: +0.3; boolq: +0.2),
    # Learned in PT = benchmarks after instruction tuning (+0.2)
    first = ax.containers[0]
    np.testing.assert_allclose([b.get_height() for b in first], [(0.3 * 4 + 0.2) / 5, 0.2])
    assert ax.get_xticklabels()[0].get_text() == (
        "Learned in FT (5 pairs)\nmnli_matched←mnli, qqp_glue←qqp, xsum←xsum,\nsocialiqa←socialiqa, boolq←instruct_mix")
    assert "mnli_matched←mnli: step40" in _footnote(fig)


def _sensitivity_rows(ckpts, readings, n_seeds=3, n_blocks=20):
    rng = np.random.default_rng(0)
    return pd.DataFrame([
        {"ckpt": c, "step": i, "scaling": scaling, "magnitude": m, "seed": s, "base_loss": 7.0,
         "block_deltas": m * 0.01 * (i + 1) + rng.normal(0, 0.002, n_blocks), "n_tokens": n_blocks * 127}
        for i, c in enumerate(ckpts) for scaling, mags in readings.items() for m in mags for s in range(n_seeds)])


def test_sensitivity_panel_per_scaling_with_ci_bands():
    four = dataclasses.replace(TINY, ckpts=("step1000", "step18000", "step342000", "main"))
    frame = _sensitivity_rows(four.ckpts[:-1], {"relative": (0.1,), "init": (0.5, 1.0)})
    fig = plots.fig_sensitivity(frame, four)
    default, other = fig.axes
    assert default.get_title(loc="left").startswith("A  init — default") and "init std" in default.get_title("left")
    assert other.get_title(loc="left").startswith("B  relative")
    assert [t.get_text() for t in default.get_legend().get_texts()] == ["γ = 0.5", "γ = 1"]
    table = stats.sensitivity_table(frame, TINY)
    for line, gamma in zip(default.get_lines()[:2], (0.5, 1.0)):
        expected = table[(table["scaling"] == "init") & (table["magnitude"] == gamma)]["delta_loss"].to_numpy()
        np.testing.assert_allclose(line.get_ydata()[:-1], expected)
        assert np.isnan(line.get_ydata()[-1])  # main is missing: a gap
    band = default.collections[1].get_paths()[0].vertices[:, 1]
    init_1 = table[(table["scaling"] == "init") & (table["magnitude"] == 1.0)]
    assert band.max() == pytest.approx(init_1["ci_high"].max()) and band.min() == pytest.approx(init_1["ci_low"].min())
    assert default.get_ylabel() == "Δ held-out loss vs unperturbed (nats/token)"
    assert default.get_xlabel() == plots.LADDER_XLABEL
    assert _footnote(fig) == "missing cells (drawn as gaps): sensitivity: main"
    assert "mean over 3 noise seeds and 2,540 scored held-out tokens; band = 95 % CI" in " ".join(
        fig._suptitle.get_text().split())
    plots.fig_sensitivity(table, TINY)  # a summary table draws the same figure
    with pytest.raises(ValueError, match=r"lacks columns \['block_deltas'\]"):
        plots.fig_sensitivity(frame.drop(columns="block_deltas"), TINY)


def test_bad_frames_get_clear_errors(frame):
    with pytest.raises(ValueError, match=r"lacks columns \['std'\]"):
        plots.fig3_sft(frame.drop(columns="std"), TINY)
    with pytest.raises(ValueError, match="share a .* cell"):
        plots.fig3_sft(pd.concat([frame, frame.head(1)]), TINY)
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        plots.fig5_format([], TINY)


def test_save_and_write_table(tmp_path, monkeypatch, frame):
    monkeypatch.setattr(plots, "figures_dir", lambda name: tmp_path / name.replace("-", "_"))
    fig = plots.fig5_format(frame, TINY)
    pdf, png = plots.save(fig, TINY, "fig5_format")
    assert (pdf, png) == (tmp_path / "tiny" / "fig5_format.pdf", tmp_path / "tiny" / "fig5_format.png")
    assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:4] == b"\x89PNG"
    table = pd.DataFrame({"direction": ["Class→Gen", "Gen→Class"], "step": [738020.0, 1000.0],
                          "mrc_pct": [-61.4612, np.nan]})
    csv, md = plots.write_table(table, "paper-reference", "mrc")
    assert csv == tmp_path / "paper_reference" / "mrc.csv"
    assert pd.read_csv(csv)["mrc_pct"].iloc[0] == -61.4612
    assert md.read_text() == ("| direction | step | mrc_pct |\n|---|---|---|\n| Class→Gen | 738020 | -61.46 |\n"
                              "| Gen→Class | 1000 |  |\n")


def test_paper_reference_fig6_states_the_papers_mean_relative_changes():
    from amuro_utils.store.results import load_paper_results

    profile = get_profile("paper-reference")
    fig = plots.fig6_transfer(load_paper_results(), profile)
    assert fig.axes[2].get_title() == "Class→Gen: mean relative change = -61.46 %\n95 % CI [-100.0, +32.1], 32 pair × checkpoint rows"
    assert fig.axes[3].get_title() == "Gen→Class: mean relative change = +0.31 %\n95 % CI [-1.9, +2.9], 32 pair × checkpoint rows"
    assert "[authors' released numbers]" in _title(fig)


def test_rung_ticks_show_the_ladder_step():
    tiny = get_profile("tiny")
    steps = {label: tiny.rungs[label].removeprefix("step") for label in tiny.ckpts if label != "main"}
    assert [plots.tick_label(tiny, c) for c in ("step1000", "step18000", "step342000")] == \
        [f"1k\n({steps['step1000']})", f"18k\n({steps['step18000']})", f"342k\n({steps['step342000']})"]
    assert plots.tick_label(tiny, "main") == f"main\n({tiny.tiny_ladder.total_steps})"
    fig, ax = plt.subplots()
    plots._ladder_axis(ax, tiny)
    assert ax.get_xlabel() == plots.LADDER_XLABEL + "\n(in brackets: the ladder's own step)"
    assert [plots.tick_label(get_profile("paper"), c) for c in ("step1000", "main")] == ["1k", "main"]

