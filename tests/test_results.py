"""The results store (atomic records, resume, tidy frame) and the paper's released CSVs in the same schema."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from importlib import metadata

import pytest

from amuro_utils.store import artifacts, results
from amuro_utils.store.identity import config_hash
from amuro_utils.store.results import COLUMNS, Store, load_paper_results, parse_model_id

KEY = dict(model="allenai/OLMo-1B-hf", ckpt="step1000", fine_tune="mnli", method="full", seed=42, eval_set="xsum",
           format="default", shots=4)
METRICS = {"metric": "rougeL", "mean": 0.21, "ci_low": 0.19, "ci_high": 0.23, "performance": 0.21, "std": 0.01,
           "n": 3, "n_truncated": 1}
PROVENANCE = {"revision": "step1000-tokens4B", "commit": "abc123", "config_hash": "0123456789abcdef",
              "versions": {"torch": "2.13.0"}, "profile": "paper"}


@pytest.fixture(scope="module")
def paper():
    return load_paper_results()


# ---------------------------------------------------------------------------------------------------------------
# the store


def test_write_path_and_round_trip(tmp_path):
    store = Store(tmp_path)
    path = store.write(KEY, METRICS, PROVENANCE, scores=[0.1, 0.2, 0.33], predictions=["a", "b", "c"])
    assert path == tmp_path / "allenai--OLMo-1B-hf" / "step1000" / "mnli.full.seed42" / "xsum__default__4shot.json"
    record = store.read(**KEY)
    assert record["key"] == KEY
    assert record["scores"] == [0.1, 0.2, 0.33] and record["predictions"] == ["a", "b", "c"]
    assert record["provenance"]["created"].endswith("+00:00")
    assert list(tmp_path.rglob("*.tmp")) == []

    frame = store.frame()
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 1
    row = frame.iloc[0]
    assert (row["model"], row["ckpt"], row["step"], row["fine_tune"], row["eval_set"], row["format"], row["shots"]) \
        == ("allenai/OLMo-1B-hf", "step1000", 1000.0, "mnli", "xsum", "default", 4)
    assert (row["metric"], row["performance"], row["mean"], row["std"], row["ci_low"], row["ci_high"], row["n"],
            row["n_truncated"]) == ("rougeL", 0.21, 0.21, 0.01, 0.19, 0.23, 3.0, 1.0)
    assert (row["source"], row["profile"], row["revision"], row["commit"], row["seed"], row["variant"]) \
        == ("run", "paper", "step1000-tokens4B", "abc123", 42, "standard")
    assert json.loads(row["versions"]) == {"torch": "2.13.0"}
    assert row["origin"] == "allenai--OLMo-1B-hf/step1000/mnli.full.seed42/xsum__default__4shot.json"


def test_continuous_readings_round_trip_into_the_item_frame(tmp_path):
    from amuro_utils.models import evaluate

    assert set(results.CONTINUOUS_COLUMNS) == {n for names in evaluate.CONTINUOUS.values() for n in names}
    store = Store(tmp_path)
    store.write(KEY, METRICS, PROVENANCE, scores=[0.1, 0.2, 0.33], continuous={"gold_bpb": [1.5, 2.25, 3.0]})
    assert store.read(**KEY)["continuous"] == {"gold_bpb": [1.5, 2.25, 3.0]}
    row = store.frame(items=True).iloc[0]
    assert row["gold_bpb"].tolist() == [1.5, 2.25, 3.0] and row["gold_share"] is None
    assert "gold_bpb" not in store.frame().columns  # per-item readings only with the items
    with pytest.raises(ValueError, match=r"unknown continuous readings \['perplexity'\]"):
        store.write(KEY, METRICS, PROVENANCE, continuous={"perplexity": [1.0]})


def test_main_step_from_recorded_revision_else_nan(tmp_path):
    store = Store(tmp_path)
    store.write({**KEY, "ckpt": "main"}, METRICS, {**PROVENANCE, "revision": "step738020-tokens3094B"})
    store.write({**KEY, "ckpt": "main", "eval_set": "cnn"}, METRICS, {**PROVENANCE, "revision": "main"})
    steps = store.frame().set_index("eval_set")["step"]
    assert steps["xsum"] == 738020.0 and math.isnan(steps["cnn"])


def test_has_skips_finished_records_only(tmp_path):
    store = Store(tmp_path)
    assert not store.has(**KEY)
    store.write(KEY, METRICS, PROVENANCE)
    assert store.has(**KEY)
    assert not store.has(**{**KEY, "shots": 0})
    assert not store.has(**{**KEY, "format": "instruct"})
    with pytest.raises(KeyError, match="no valid record"):
        store.read(**{**KEY, "shots": 0})


def test_interrupted_write_is_never_read_back(tmp_path, caplog):
    store = Store(tmp_path)
    store.write(KEY, METRICS, PROVENANCE)
    folder = store.path(**KEY).parent
    # a job killed mid-write leaves its temp file; a crash without the atomic rename leaves a truncated record
    (folder / ".xsum__default__4shot.json.k2j3.tmp").write_text('{"key": {"model": "allenai/OLMo-1B-hf", "ck')
    truncated_key = {**KEY, "eval_set": "socialiqa"}
    full = json.dumps({"schema": 1, "key": truncated_key, "metrics": METRICS, "provenance": PROVENANCE})
    store.path(**truncated_key).write_text(full[: len(full) // 2])
    with caplog.at_level(logging.WARNING, logger="amuro_utils.store.results"):
        frame = store.frame()
    assert frame["eval_set"].tolist() == ["xsum"]
    assert "socialiqa__default__4shot.json" in caplog.text and "not valid JSON" in caplog.text
    assert not store.has(**truncated_key)
    assert store.has(**KEY)


def test_failed_write_keeps_the_old_record_and_no_temp(tmp_path, monkeypatch):
    store = Store(tmp_path)
    store.write(KEY, METRICS, PROVENANCE)

    def crash(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(artifacts.os, "fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        store.write(KEY, {**METRICS, "performance": 0.99}, PROVENANCE)
    monkeypatch.undo()
    assert store.read(**KEY)["metrics"]["performance"] == 0.21
    assert list(tmp_path.rglob("*.tmp")) == []


def test_record_in_the_wrong_place_or_without_performance_is_skipped(tmp_path, caplog):
    store = Store(tmp_path)
    path = store.write(KEY, METRICS, PROVENANCE)
    moved = path.with_name("cnn__default__4shot.json")
    moved.write_text(path.read_text())
    no_perf = store.path(**{**KEY, "eval_set": "tweetqa"})
    no_perf.write_text(json.dumps({"schema": 2, "key": {**KEY, "eval_set": "tweetqa"}, "metrics": {"metric": "rougeL"},
                                   "provenance": {}}))
    with caplog.at_level(logging.WARNING, logger="amuro_utils.store.results"):
        assert store.frame()["eval_set"].tolist() == ["xsum"]
    assert "belongs at" in caplog.text and "lack a numeric performance" in caplog.text
    assert not store.has(**{**KEY, "eval_set": "cnn"})


def test_bad_keys_and_metrics_are_refused(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match=r"missing \['shots'\]"):
        store.write({k: v for k, v in KEY.items() if k != "shots"}, METRICS, PROVENANCE)
    with pytest.raises(ValueError, match="shots must be a non-negative int"):
        store.has(**{**KEY, "shots": "4"})
    with pytest.raises(ValueError, match="not usable in a record file name"):
        store.has(**{**KEY, "eval_set": "xsum__instruct"})
    with pytest.raises(ValueError, match=r"metrics lack \['performance'\]"):
        store.write(KEY, {"metric": "rougeL"}, PROVENANCE)
    assert list(tmp_path.iterdir()) == []


def test_empty_store_has_the_schema(tmp_path):
    frame = Store(tmp_path / "none").frame()
    assert list(frame.columns) == list(COLUMNS) and len(frame) == 0


def test_config_hash_is_stable_and_canonical():
    @dataclasses.dataclass
    class Settings:
        b: tuple = (1, 2)
        a: int = 1

    expected = hashlib.sha256(b'{"a":1,"b":[1,2]}').hexdigest()[:16]
    assert config_hash({"a": 1, "b": [1, 2]}) == expected
    assert config_hash({"b": (1, 2), "a": 1}) == expected
    assert config_hash(Settings()) == expected
    assert config_hash({"a": 2, "b": [1, 2]}) != expected


def test_package_versions():
    versions = results.package_versions(("pandas", "no-such-package-amuro"))
    assert versions == {"pandas": metadata.version("pandas"), "no-such-package-amuro": None}


# ---------------------------------------------------------------------------------------------------------------
# the paper's released CSVs


@pytest.mark.parametrize("model_id, table, expected", [
    ("olmo1b_hf_ckpt424000_socialiqa_3epoch_2e-6_4shots", "all_perf",
     ("step424000", "socialiqa", 4, 2e-6, 3, "standard")),
    ("olmo1b_hf_main_xsum_3epoch_2e-7_4shots", "all_perf", ("main", "xsum", 4, 2e-7, 3, "standard")),
    ("olmo1b_hf_main_mnli_3epoch_2e-5", "all_perf", ("main", "mnli", 0, 2e-5, 3, "lr2e-05+shots0")),
    ("olmo1b_hf_main_paws_3epoch_2e-6_7shots", "all_perf", ("main", "paws", 7, 2e-6, 3, "shots7")),
    ("olmo1b_checkpoint-505000_original_hf_4shots", "all_perf", ("step505000", "base", 4, None, None, "standard")),
    ("olmo1b_checkpoint-18000_original_hf_2shots", "all_perf", ("step18000", "base", 2, None, None, "shots2")),
    ("olmo1b_original_hf_4shots", "all_perf", ("main", "base", 4, None, None, "standard")),
    ("olmo1b_original_hf", "all_perf", ("main", "base", 0, None, None, "shots0")),
    ("olmo1b_checkpoint-342000_original", "all_perf", ("step342000", "base", 0, None, None, "pre_hf_fix+shots0")),
    ("checkpoint-1000_4shots", "all_perf", ("step1000", "base", 4, None, None, "unprefixed_id")),
    ("checkpoint-592000", "official_eval", ("step592000", "base", 4, None, None, "standard")),
    ("olmo1b_original_hf", "official_eval", ("main", "base", 4, None, None, "standard")),
    ("olmo1b_hf_ckpt18000_tulu_5epoch_2e-6", "official_eval", ("step18000", "tulu", 4, 2e-6, 5, "standard")),
])
def test_parse_model_id(model_id, table, expected):
    got = parse_model_id(model_id, table)
    nan_to_none = [None if isinstance(v, float) and math.isnan(v) else v for v in
                   (got["ckpt"], got["fine_tune"], got["shots"], got["lr"], got["epochs"], got["variant"])]
    assert tuple(nan_to_none) == expected


def test_parse_model_id_rejects_unknown_ids():
    assert parse_model_id("olmo1b_hf_ckpt1000_squad_3epoch_2e-6_4shots") is None
    assert parse_model_id("pythia_step1000") is None
    with pytest.raises(ValueError, match="table must be"):
        parse_model_id("checkpoint-1000", "it_perf")


def test_every_released_row_parses(paper):
    assert paper.attrs["unparsed"] == []
    tables = paper["origin"].str.split(":").str[0].value_counts().to_dict()
    assert tables == {"all_perf_table.csv": 649, "official_eval_table.csv": 107}
    assert list(paper.columns) == list(COLUMNS)
    assert set(paper["source"]) == {"paper"} and set(paper["model"]) == {"allenai/OLMo-1B-hf"}


def test_released_row_counts_per_fine_tune(paper):
    all_perf = paper[paper["origin"].str.startswith("all_perf")]
    four = all_perf[all_perf["shots"] == 4]
    # PROTOCOL §6.2: mnli 90, paws 62, socialiqa 69, xsum 72, tulu 38; 0-shot FT 15; 2-shot FT 2; 7-shot FT 1
    assert four[four["fine_tune"] != "base"]["fine_tune"].value_counts().to_dict() == \
        {"mnli": 90, "xsum": 72, "socialiqa": 69, "paws": 62, "tulu": 38}
    tuned = all_perf[all_perf["fine_tune"] != "base"]
    assert tuned["shots"].value_counts().to_dict() == {4: 331, 0: 15, 2: 2, 7: 1}
    base4 = four[(four["fine_tune"] == "base") & (four["variant"] == "standard")]
    assert (base4["ckpt"] != "main").sum() == 7 * 35 and (base4["ckpt"] == "main").sum() == 26
    assert paper["variant"].value_counts().to_dict() == {
        "standard": 698, "shots0": 20, "shots2": 16, "catwalk_extra": 11, "pre_hf_fix+shots0": 7, "shots7": 2,
        "lr2e-05+shots0": 1, "unprefixed_id": 1}
    standard = paper[paper["variant"] == "standard"]
    assert not standard.duplicated(["ckpt", "fine_tune", "eval_set", "format", "shots"]).any()


def test_released_rows_map_to_the_store_vocabulary(paper):
    row = paper[(paper["model_id"] == "olmo1b_hf_ckpt424000_socialiqa_3epoch_2e-6_4shots")
                & (paper["eval_set"] == "mnli_matched") & (paper["format"] == "default")].iloc[0]
    assert (row["ckpt"], row["step"], row["fine_tune"], row["shots"], row["metric"], row["lr"], row["epochs"]) == \
        ("step424000", 424000.0, "socialiqa", 4, "accuracy", 2e-6, 3.0)
    assert row["performance"] == 0.33560876209882834 and row["std"] == 0.0047747151036286965
    assert math.isnan(row["mean"])
    formats = paper[paper["origin"].str.startswith("all_perf")].groupby("format").size().to_dict()
    assert formats == {"default": 397, "instruct": 157, "inputoutput": 95}  # counted from the raw eval names
    assert set(paper.loc[paper["eval_set"] == "xsum", "metric"]) == {"rougeL"}
    main = paper[paper["ckpt"] == "main"]
    assert set(main["step"]) == {738020.0}
    official = paper[paper["origin"].str.startswith("official")]
    assert official.groupby("eval_set")["metric"].first().to_dict() == {
        "arc_challenge": "acc_uncond", "arc_easy": "acc_uncond", "boolq": "acc_raw", "hellaswag": "acc_per_token",
        "openbookqa": "acc_uncond", "qqp": "acc", "rte": "acc", "sciq_mc": "acc_raw"}
    assert official["std"].isna().all()
    tulu_sciq = official[(official["fine_tune"] == "tulu") & (official["eval_set"] == "sciq_mc")]
    assert len(tulu_sciq) == 8 and set(tulu_sciq["shots"]) == {4}


def test_unparsed_rows_are_reported(tmp_path, caplog):
    (tmp_path / "all_perf_table.csv").write_text(
        ",model_id,eval dataset,Performance,std\n"
        "0,olmo1b_hf_ckpt1000_mnli_3epoch_2e-6_4shots,rte,0.5,0.01\n"
        "1,llama_7b_whatever,rte,0.6,0.01\n")
    (tmp_path / "official_eval_table.csv").write_text(
        ",model_id,eval dataset,Performance\n0,checkpoint-1000,boolq,0.6\n")
    with caplog.at_level(logging.WARNING, logger="amuro_utils.store.results"):
        frame = load_paper_results(tmp_path)
    assert len(frame) == 2
    assert frame.attrs["unparsed"] == ["all_perf_table.csv row 1: 'llama_7b_whatever'"]
    assert "llama_7b_whatever" in caplog.text


def test_missing_release_files_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="data/paper_results"):
        load_paper_results(tmp_path)
