"""The paper's B1 on the sixteen Pythia ladders and the size questions: point estimates recomputed by hand from the
shipped extract (numpy on the CSV, not the package's statistics), verdicts at the fixed seed, the figure and files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from amuro_utils.config import paths
from amuro_utils.config.profiles import PYTHIA_LADDERS, pythia_evals  # noqa: E402
from amuro_utils.models import lmeval
from amuro_utils.stats import analysis
from amuro_utils.verdicts import pythia_suite as suite  # noqa: E402

RAW = pd.read_csv(lmeval.EXTRACT)
PT = ("sciq", "arc_challenge", "arc_easy")  # the paper's Learned-in-PT list as Pythia evaluated it (lm-eval names)
LM_EVAL = {v: k for k, v in lmeval.TASKS.items()}  # registry set -> lm-eval task
JUDGED = [256, 512, 1000, *range(3000, 143_001, 10_000)]
LATE = [s for s in JUDGED if s >= 342_000 / 738_020 * 143_000]


def _fit(ladder: str, task: str, steps) -> float:
    """Fitted change by hand: OLS slope of acc on log10(step) × the log10 span."""
    cell = RAW[(RAW["ladder"] == ladder) & (RAW["task"] == task)].set_index("step").loc[list(steps), "acc"]
    x = np.log10(np.array(steps, dtype=float))
    slope = np.polyfit(x, cell.to_numpy(), 1)[0]
    return slope * (x.max() - x.min())


def _late(ladder: str, tasks=PT) -> float:
    return float(np.mean([_fit(ladder, t, LATE) for t in tasks]))


@pytest.fixture(scope="module")
def frame():
    return suite.suite_frame()


def test_ladders_windows_and_groups(frame):
    profile = pythia_evals("pythia-70m")
    assert [int(c.removeprefix("step")) for c in profile.ckpts] == JUDGED
    assert suite.late_ckpts(profile) == [f"step{s}" for s in LATE] and LATE[0] == 73000
    assert suite.pt_sets(profile, frame) == ["sciq_mc", "arc_challenge", "arc_easy"]
    assert suite.pt_sets(suite.with_extra_set(profile), frame) == ["sciq_mc", "arc_challenge", "arc_easy", "piqa"]
    assert analysis.learned_groups(profile)[analysis.GROUP_FT][0] == ("mnli_matched", "mnli")  # never evaluated
    assert suite.parameters("pythia-1.4b-deduped") == 1.4e9
    assert suite.describe("pythia-70m") == {"ladder": "pythia-70m", "size": "70M", "data": "Pile",
                                            "tokens_per_param": 4284}


def test_b1_across_16_ladders_matches_the_numbers_by_hand(frame):
    table = suite.b1_table(frame, n_boot=200)
    assert len(table) == 16 * 3 and list(table["ladder"].unique()) == list(PYTHIA_LADDERS)
    by = table.set_index(["ladder", "id"])
    for ladder in ("pythia-70m", "pythia-1b", "pythia-12b-deduped"):
        rise = np.mean([_fit(ladder, t, JUDGED) for t in PT])
        assert by.loc[(ladder, "B1a"), "value"] == pytest.approx(rise, abs=1e-12)
        deciding = by.loc[(ladder, "B1b"), "deciding"].split(":")[0].removeprefix("set ")  # judged set by set
        assert by.loc[(ladder, "B1b"), "value"] == pytest.approx(_fit(ladder, LM_EVAL[deciding], LATE), abs=1e-12)
        with_piqa = np.mean([_fit(ladder, t, JUDGED) for t in (*PT, "piqa")])
        assert by.loc[(ladder, "B1a"), "value_with_piqa"] == pytest.approx(with_piqa, abs=1e-12)
        assert by.loc[(ladder, "B1c"), "verdict"] == "not measurable"
    assert by.loc[("pythia-70m", "B1b"), "value"] == pytest.approx(-0.0730, abs=5e-5)  # SciQ falls late
    assert by.loc[("pythia-70m", "B1b"), "deciding"].startswith("set sciq_mc: -0.07295")
    assert np.isfinite(by.loc[("pythia-70m", "B1a"), "mde"]) and by.loc[("pythia-70m", "B1c"), "mde"] == "n/a"
    wide = suite.b1_wide(table)
    assert wide.columns.tolist() == ["ladder", "tokens / param", "B1a rise", "B1a with PIQA",
                                     "B1b level off (deciding set's late change)", "B1b with PIQA",
                                     "B1b deciding set", "B1c flat group", "mde (B1a / B1b)"]
    assert wide.loc[0, "B1c flat group"] == "not measurable" and wide.loc[0, "B1b deciding set"] == "sciq_mc"


def test_size_questions_by_hand_and_their_verdicts(frame):
    table, per = suite.questions(frame)
    rows = table.set_index("id")
    late = {ladder: _late(ladder) for ladder in PYTHIA_LADDERS}
    np.testing.assert_allclose(per.set_index("ladder")["late_change"].reindex(PYTHIA_LADDERS), list(late.values()),
                               atol=1e-12)
    small = ["pythia-70m", "pythia-70m-deduped", "pythia-160m", "pythia-160m-deduped"]
    assert rows.loc["L2", "value"] == pytest.approx(np.mean([late[lad] for lad in small]), abs=1e-12)
    sizes = ["70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b"]
    by_size = [(late[f"pythia-{s}"] + late[f"pythia-{s}-deduped"]) / 2 for s in sizes]
    x = np.log10([suite.parameters(f"pythia-{s}") for s in sizes])
    assert rows.loc["L2b", "value"] == pytest.approx(np.polyfit(x, by_size, 1)[0] * (x.max() - x.min()), abs=1e-12)
    dedup = np.mean([late[f"pythia-{s}-deduped"] - late[f"pythia-{s}"] for s in sizes])
    assert rows.loc["L3", "value"] == pytest.approx(dedup, abs=1e-12)
    deciding = rows.loc["L1", "deciding"].split(":")[0].removeprefix("ladder ")  # judged ladder by ladder
    assert rows.loc["L1", "value"] == pytest.approx(late[deciding], abs=1e-12)
    # 2,000 resamples at seed 0
    assert rows["verdict"].to_dict() == {"L1": "inconclusive", "L2": "supported", "L2b": "supported",
                                         "L3": "supported"}
    assert deciding == "pythia-70m"  # the ladder nearest to settling it: no interval lies inside ±0.02
    assert rows.loc["L2", "leave_one_out"] == "holds leaving out any one of 3 sets, 4 ladders"
    assert rows.loc["L2b", "readings"].startswith("with PIQA: supported")


def test_signal_and_noise_by_hand():
    snr = suite.snr_table().set_index(["ladder", "task"])
    cell = RAW[(RAW["ladder"] == "pythia-70m") & (RAW["task"] == "sciq") & RAW["step"].isin(JUDGED)]
    signal = cell["acc"].max() - cell["acc"].min()
    assert snr.loc[("pythia-70m", "sciq"), "signal"] == pytest.approx(signal, abs=1e-15)
    assert snr.loc[("pythia-70m", "sciq"), "snr"] == pytest.approx(signal / cell["acc_stderr"].median(), abs=1e-12)
    # WSC on pythia-1b answers the majority class at every late checkpoint: no signal at all
    assert snr.loc[("pythia-1b", "wsc"), "late_signal"] == 0.0
    assert len(snr) == 16 * 8
    wide = suite.snr_wide(snr.reset_index(), "late_snr")
    assert wide["task"].tolist() == list(suite.SNR_TASKS) and wide.columns[1:3].tolist() == ["70m", "70m-d"]


def test_write_draws_the_figure_and_the_report(frame, tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "FIGURES_ROOT", tmp_path)
    done = suite.write(n_boot=50)
    out = tmp_path / "pythia_ladders"
    assert {p.name for p in out.iterdir()} >= {"ladders_b1.md", "ladders_b1.csv", "ladders_b1_long.csv",
                                               "ladders_questions.md", "ladders_fig2.png", "ladders_fig2.pdf",
                                               "ladders_snr.md", "ladders_late_snr.md", "index.html"}
    page = (out / "index.html").read_text()
    assert "Real ladders: Pythia" in page and "No scorecard yet" not in page
    assert "B1 across 16 ladders" in (out / "ladders_b1.md").read_text()
    assert (out / "ladders_questions.md").read_text().count("Hypothesis:") == 4
    assert set(done["seconds"]) >= {"total"} and done["seconds"]["total"] < 120
    fig = suite.fig2_ladders(frame)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[0] == "Pythia-70M (4,284 tokens/param)" and titles[-1] == "Pythia-12B (25 tokens/param)"
    assert len(fig.axes[0].lines) >= 8  # 4 sets × 2 data sets, + chance lines
