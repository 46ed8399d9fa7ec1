"""The task registry: exact prompts of real items, label token ids, sampling, carve-outs, mixtures, errors."""

import json

import datasets
import numpy as np
import pytest

from amuro_utils.config import profiles
from amuro_utils.config.paths import DATA_DIR
from amuro_utils.data import offline, tasks
from amuro_utils.models import evaluate

# First item of every offline set × format, rendered (PROTOCOL §2.4 strings), and its gold completion.
EXPECTED = {
    ("mnli", "default"): '### Input_1: Of course, it will be generally known to-morrow." John reflected. \n ### Input_2: The news was about to break, and John had announced that he found out the newspaper would be announcing it tomorrow to the public.\n ### Inference: ',
    ("mnli_matched", "default"): "### Input_1: Nobody knows much about the early Etruscans.\n ### Input_2: Nobody knows about them, because they didn't exist for a long time.\n ### Inference: ",
    ("mnli_matched", "instruct"): "Consider the following texts: Text 1: Nobody knows much about the early Etruscans. Text 2: Nobody knows about them, because they didn't exist for a long time. The relation is ",
    ("mnli_matched", "inputoutput"): "Nobody knows much about the early Etruscans. Nobody knows about them, because they didn't exist for a long time.",
    ("mnli_mismatched", "default"): "### Input_1: Your contribution helped make it possible for us to provide our students with a quality education.\n ### Input_2: Your contributions were of no help with our students' education.\n ### Inference: ",
    ("mnli_mismatched", "instruct"): "Consider the following texts: Text 1: Your contribution helped make it possible for us to provide our students with a quality education. Text 2: Your contributions were of no help with our students' education. The relation is ",
    ("mnli_mismatched", "inputoutput"): "Your contribution helped make it possible for us to provide our students with a quality education. Your contributions were of no help with our students' education.",
    ("rte", "default"): "### Input_1: Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to the Christopher Reeve Foundation.\n ### Input_2: Christopher Reeve had an accident.\n ### Inference: ",
    ("rte", "instruct"): "Consider the following texts: Text 1: Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to the Christopher Reeve Foundation. Text 2: Christopher Reeve had an accident. The relation is ",
    ("cb", "default"): "### Input_1: Valence the void-brain, Valence the virtuous valet. Why couldn't the figger choose his own portion of titanic anatomy to shaft? Did he think he was helping?\n ### Input_2: Valence was helping\n ### Inference: ",
    ("cb", "instruct"): "Consider the following texts: Text 1: Valence the void-brain, Valence the virtuous valet. Why couldn't the figger choose his own portion of titanic anatomy to shaft? Did he think he was helping? Text 2: Valence was helping The relation is ",
    ("cb", "inputoutput"): "Valence the void-brain, Valence the virtuous valet. Why couldn't the figger choose his own portion of titanic anatomy to shaft? Did he think he was helping? Valence was helping",
    ("paws_train", "default"): "### Input_1: In Paris , in October 1560 , he secretly met the English ambassador , Nicolas Throckmorton , asking him for a passport to return to England through Scotland .\n ### Input_2: In October 1560 , he secretly met with the English ambassador , Nicolas Throckmorton , in Paris , and asked him for a passport to return to Scotland through England .\n ### Paraphrase Classification: ",
    ("paws", "default"): "### Input_1: This was a series of nested angular standards , so that measurements in azimuth and elevation could be done directly in polar coordinates relative to the ecliptic .\n ### Input_2: This was a series of nested polar scales , so that measurements in azimuth and elevation could be performed directly in angular coordinates relative to the ecliptic .\n ### Paraphrase Classification: ",
    ("paws", "instruct"): "Let\u2019s compare the two sentences: Sentence_1: This was a series of nested angular standards , so that measurements in azimuth and elevation could be done directly in polar coordinates relative to the ecliptic . Sentence_2: This was a series of nested polar scales , so that measurements in azimuth and elevation could be performed directly in angular coordinates relative to the ecliptic . Are they paraphrasing?: ",
    ("paws", "inputoutput"): "This was a series of nested angular standards , so that measurements in azimuth and elevation could be done directly in polar coordinates relative to the ecliptic . This was a series of nested polar scales , so that measurements in azimuth and elevation could be performed directly in angular coordinates relative to the ecliptic .",
    ("qqp_glue", "default"): "### Input_1: What is the chemical formula of nitrogen?\n ### Input_2: What is the chemical formula for hydrocarbon?\n ### Paraphrase Classification: ",
    ("qqp_glue", "instruct"): "Let\u2019s compare the two sentences: Sentence_1: What is the chemical formula of nitrogen? Sentence_2: What is the chemical formula for hydrocarbon? Are they paraphrasing?: ",
    ("stsb_glue", "default"): "### Input_1: A man with a hard hat is dancing.\n ### Input_2: A man wearing a hard hat is dancing.\n ### Paraphrase Classification: ",
    ("stsb_glue", "instruct"): "Let\u2019s compare the two sentences: Sentence_1: A man with a hard hat is dancing. Sentence_2: A man wearing a hard hat is dancing. Are they paraphrasing?: ",
    ("qqp_train", "default"): "### Input_1: How should one improve one's presence of mind?\n ### Input_2: What is best way to increase presence of mind?\n ### Paraphrase Classification: ",
    ("mrpc", "default"): "### Input_1: He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .\n ### Input_2: \" The foodservice pie business does not fit our long-term growth strategy .\n ### Paraphrase Classification: ",
    ("mrpc", "instruct"): "Let\u2019s compare the two sentences: Sentence_1: He said the foodservice pie business doesn 't fit the company 's long-term growth strategy . Sentence_2: \" The foodservice pie business does not fit our long-term growth strategy . Are they paraphrasing?: ",
    ("mrpc", "inputoutput"): "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy . \" The foodservice pie business does not fit our long-term growth strategy .",
    ("socialiqa_train", "default"): "### Input: Because he was very good at throwing galas, and his best friend asked him, Lee planned a wedding.\n ### Answer: Answer A: buy a wedding ring Answer B: arrange for flowersAnswer C: make hotel reservations\n ### Question: ",
    ("socialiqa", "default"): "### Input: Tracy didn't go home that evening and resisted Riley's attacks.\n ### Answer: Answer A: make a new plan Answer B: Go home and see RileyAnswer C: Find somewhere to go\n ### Question: ",
    ("socialiqa", "instruct"): "Given the context: Tracy didn't go home that evening and resisted Riley's attacks. And the answer: Answer A: make a new plan Answer B: Go home and see RileyAnswer C: Find somewhere to goGenerate a suitable question: ",
    ("socialiqa", "inputoutput"): "Tracy didn't go home that evening and resisted Riley's attacks.make a new planGo home and see RileyFind somewhere to go",
    ("sciq", "default"): "### Input: \n ### Answer: Answer A: darwin Answer B: Linnaeus Answer C: shawAnswer D: Scopes\n ### Question: ",
    ("sciq", "instruct"): "Given the context:  And the answer: Answer A: darwin Answer B: LinnaeusAnswer C: shawAnswer D: ScopesGenerate a suitable question: ",
    ("tweetqa", "default"): "### Input: Our prayers are with the students, educators & families at Independence High School & all the first responders on the scene. #PatriotPride\u2014 Doug Ducey (@dougducey) February 12, 2016\n ### Answer: independence high school\n ### Question: ",
    ("tweetqa", "instruct"): "Given the context: Our prayers are with the students, educators & families at Independence High School & all the first responders on the scene. #PatriotPride\u2014 Doug Ducey (@dougducey) February 12, 2016 And the answer: independence high schoolGenerate a suitable question: ",
    ("arc_easy", "default"): "Question: Which technology was developed most recently?\nAnswer:",
    ("arc_challenge", "default"): "Question: Juan and LaKeisha roll a few objects down a ramp. They want to see which object rolls the farthest. What should they do so they can repeat their investigation?\nAnswer:",
    ("openbookqa", "default"): "Frilled sharks and angler fish live far beneath the surface of the ocean, which is why they are known as",
    ("hellaswag", "default"): "Roof shingle removal: A man is sitting on a roof. He",
    ("sciq_mc", "default"): "Question: Who proposed the theory of evolution by natural selection?\nAnswer:",
    ("piqa", "default"): "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:",
}
TARGETS = {"mnli": "neutral", "mnli_matched": "neutral", "mnli_mismatched": "contradiction", "rte": "neutral",
           "cb": "contradiction", "paws_train": "no", "paws": "no", "qqp_glue": "no", "stsb_glue": "yes", "qqp_train": "yes",
           "mrpc": "yes", "socialiqa_train": "What does Lee need to do before this?",
           "socialiqa": "What does Tracy need to do before this?",
           "sciq": "Who proposed the theory of evolution by natural selection?",
           "tweetqa": "at which school were first responders on the scene for?"}
MC = {"arc_easy": ([" cellular telephone", " television", " refrigerator", " airplane"], 0, "Answer:"),
      "arc_challenge": ([" Put the objects in groups.", " Change the height of the ramp.",
                         " Choose different objects to roll.", " Record the details of the investigation."], 3, "Answer:"),
      "openbookqa": ([" Deep sea animals", " fish", " Long Sea Fish", " Far Sea Animals"], 0, "Answer:"),
      "hellaswag": ([" is using wrap to wrap a pair of skis.", " is ripping level tiles off.",
                     " is holding a rubik's cube.", " starts pulling up roofing on a roof."], 3, None),
      "sciq_mc": ([" Linnaeus", " shaw", " Scopes", " darwin"], 3, None),
      "piqa": ([" Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you "
                "will also need to supply it with a water bottle and a food dish.",
                " Provide the guinea pig with a cage full of a few inches of bedding made of ripped jeans material, you "
                "will also need to supply it with a water bottle and a food dish."], 0, None)}


def _first(name):
    return tasks.load_examples(name, limit=1)[0]


def _jsonl(relative):
    with open(DATA_DIR / relative, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("name,fmt", sorted(EXPECTED))
def test_render_real_first_item_exactly(name, fmt):
    dataset = tasks.get(name)
    example = _first(name)
    assert tasks.render(dataset, example, fmt) == EXPECTED[(name, fmt)]
    if name in TARGETS:
        assert example["target"] == TARGETS[name]
    else:
        choices, gold, uncond = MC[name]
        assert (example["choices"], example["gold"], example.get("uncond_context")) == (choices, gold, uncond)


def test_every_offline_set_and_format_is_covered():
    covered = {name for name, _ in EXPECTED} | {"xsum", "xsum_train", "boolq"} | set(
        n for n in tasks.REGISTRY if n.startswith("llmbar_"))
    offline_sets = {n for n, d in tasks.REGISTRY.items() if tasks.get(n).offline and d.kind != "chat"}
    assert offline_sets == covered
    for name in covered - {"xsum", "xsum_train", "boolq"} - {n for n in covered if n.startswith("llmbar_")}:
        assert {f for n, f in EXPECTED if n == name} == set(tasks.get(name).templates)


def test_render_summaries_boolq_and_hellaswag_cleanup_on_real_rows():
    rows = _jsonl("xsum/test.jsonl")
    train, test = tasks.load_examples("xsum_train", limit=1)[0], tasks.load_examples("xsum", limit=1)[0]
    assert tasks.render(tasks.get("xsum_train"), train, "default") == "### Input: " + rows[0]["document"] + "\n ### Summary: "
    assert train["target"] == rows[0]["summary"] and test["target"] == rows[200]["summary"]
    doc = rows[200]["document"]
    xsum = tasks.get("xsum")
    assert tasks.render(xsum, test, "default") == "### Input: " + doc + "\n ### Summary: "
    assert tasks.render(xsum, test, "instruct") == "Please read the following text: " + doc + " Provide a summary: "
    assert tasks.render(xsum, test, "inputoutput") == doc
    assert tasks.demo(xsum, test, "inputoutput") == doc + rows[200]["summary"] + "\n"  # IO: no separator

    boolq = tasks.load_examples("boolq", limit=1)[0]
    passage = datasets.load_from_disk(str(offline.hf_dataset_path("boolq/none/validation")))[0]["passage"]
    assert boolq["context"] == passage + "\nQuestion: does ethanol take more energy make that produces?\nAnswer:"
    assert (boolq["choices"], boolq["gold"]) == ([" no", " yes"], 0)

    wikihow = tasks.load_examples("hellaswag", limit=3248)[3247]  # ctx "[header] How to do ... [title] Set up ..."
    assert wikihow["context"] == ('Health: How to do the " shoulder stand " yoga position. Set up your yoga station. '
                                  "Find an adequate space without distractions. Unroll your yoga mat evenly onto the floor.")
    assert wikihow["gold"] == 1


def test_mc_demo_and_metrics_follow_catwalk():
    arc = tasks.get("arc_easy")
    assert tasks.demo(arc, _first("arc_easy"), "default") == (
        "Question: Which technology was developed most recently?\nAnswer: cellular telephone\n\n")
    second = tasks.load_examples("sciq_mc", limit=2)[1]  # support is empty: catwalk strips the leading newline
    assert second["context"] == "Question: Each specific polypeptide has a unique linear sequence of which acids?\nAnswer:"
    metrics = {n: tasks.get(n).metric for n in profiles.PAPER.instruction.benchmarks}
    assert metrics == {"arc_easy": "acc_uncond", "arc_challenge": "acc_uncond", "openbookqa": "acc_uncond",
                       "hellaswag": "acc_per_token", "boolq": "acc_raw", "sciq_mc": "acc_raw"}


def test_llmbar_chat_prompt_clean_leak_and_demo():
    source = json.load(open(DATA_DIR / "llmbar/LLMBar/Natural/dataset.json", encoding="utf-8"))
    order = datasets.Dataset.from_list([{"i": i} for i in range(len(source))]).shuffle(seed=42)["i"]
    examples = tasks.load_examples("llmbar_Natural")
    assert [e["id"] for e in examples] == [f"llmbar_Natural-{i}" for i in order]  # the paper's shuffled eval file
    assert tasks.load_examples("llmbar_Natural", source="hub") == examples  # hub = the GitHub JSON it read
    row, example = source[order[0]], examples[0]
    user = ("### Instruction: " + row["input"] + "### Output_1: " + row["output_1"] + "\n ### Output_2: "
            + row["output_2"] + "\n ### Instruction Following: ")
    dataset = tasks.get("llmbar_Natural")
    assert example["target"] == str(row["label"]) == "2"
    assert tasks.render(dataset, example, "default") == "|||IP_ADDRESS|||<|user|>\n" + user + "\n<|assistant|>\n"
    assert tasks.render(dataset, example, "default", gold_leak=True) == (
        "|||IP_ADDRESS|||<|user|>\n" + user + "\n<|assistant|>\n2|||IP_ADDRESS|||\n<|assistant|>\n")
    assert tasks.demo(dataset, example, "default") == user + "2\n"
    assert [len(tasks.load_examples(f"llmbar_{s}")) for s in tasks.LLMBAR_SPLITS] == [100, 134, 46, 92, 47]


def _label_ids(name, tok):
    ids, owner = evaluate.candidate_token_ids(tok, tasks.get(name).force_words)
    return [(i, tasks.get(name).force_words[w]) for i, w in zip(ids, owner)]


def test_label_token_ids_match_protocol():
    tok = offline.olmo_tokenizer()
    assert _label_ids("mnli_matched", tok) == [
        (290, "entailment"), (647, "entailment"), (420, "entailment"), (27912, "neutral"),
        (19657, "contradiction"), (324, "contradiction"), (2474, "contradiction"),
        (46518, " entailment"), (9238, " neutral"), (20620, " contradiction")]  # duplicate 420 -> "entailment"
    assert _label_ids("qqp", tok) == [(9820, "yes"), (2369, "no"), (4754, " yes"), (642, " no")]
    assert _label_ids("llmbar_Natural", tok) == [(18, "1"), (19, "2"), (337, " 1"), (374, " 2")]


def test_strip_label_order():
    nli, para, llmbar = tasks.get("rte"), tasks.get("paws"), tasks.get("llmbar_Natural")
    assert [evaluate.strip_label(p, nli.strip_order) for p in (" contradiction", "neutral", " entailment", "yes")] == [
        "contradiction", "neutral", "entailment", None]
    assert [evaluate.strip_label(p, para.strip_order) for p in (" no", "yes", "maybe")] == ["no", "yes", None]
    # LLMBar predictions are not stripped: exact match with '1' fails for ' 1', as in the paper
    assert not llmbar.strip_order
    assert evaluate.accuracy([" 1", "1"], ["1", "1"], llmbar.strip_order).tolist() == [0.0, 1.0]


def test_target_rules():
    assert tasks.target_text(tasks.get("qqp"), {"label": -1}) == "no"  # SetFit/qqp test: gold always "no"
    assert tasks.target_text(tasks.get("stsb"), {"label": -1}) == "no"
    assert [tasks.target_text(tasks.get("stsb_glue"), {"label": x}) for x in (3.6, 3.5)] == ["yes", "no"]
    assert [tasks.target_text(tasks.get("mnli"), {"label": x}) for x in (0, 1, 2)] == ["entailment", "neutral",
                                                                                       "contradiction"]
    labels = datasets.load_from_disk(str(offline.hf_dataset_path("super_glue/cb/validation")))["label"][:3]
    assert labels == [1, 2, 0]
    assert [e["target"] for e in tasks.load_examples("cb", limit=3)] == ["contradiction", "neutral", "entailment"]
    rte_labels = datasets.load_from_disk(str(offline.hf_dataset_path("glue/rte/validation")))["label"]
    assert [e["target"] for e in tasks.load_examples("rte")] == ["neutral" if x == 1 else "entailment" for x in rte_labels]


def test_sample_train_is_hf_shuffle_then_first_n():
    rows = _jsonl("mnli/train.jsonl")
    expected = datasets.Dataset.from_list(rows).shuffle(seed=42).select(range(10)).to_list()
    sample = tasks.sample_train("mnli", n=10)
    assert [e["fields"]["premise"] for e in sample] == [r["premise"] for r in expected]
    assert sample == tasks.sample_train("mnli", n=10)
    assert sample[0]["id"] == f"mnli-{np.random.default_rng(42).permutation(300)[0]}"
    assert len(tasks.sample_train("xsum_train", fraction=0.05)) == int(0.05 * 200)


def test_carve_outs_are_disjoint():
    for train, test, sizes in (("xsum_train", "xsum", (200, 100)), ("socialiqa_train", "socialiqa", (989, 954))):
        a, b = tasks.load_examples(train), tasks.load_examples(test)
        assert (len(a), len(b)) == sizes
        assert not {e["id"] for e in a} & {e["id"] for e in b}
        assert not {json.dumps(e["fields"]) for e in a} & {json.dumps(e["fields"]) for e in b}
    assert min(int(e["id"].split("-")[1]) for e in tasks.sample_train("socialiqa_train", n=989)) >= 954


def _normal(text):
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def test_instruct_mix_is_real_deterministic_chat_without_eval_overlap():
    mix = tasks.load_examples("instruct_mix")
    assert len(mix) == 1000 + 3610 + 7993
    assert mix[1000] == {"id": "nq_open-0", "messages": [
        {"role": "user", "content": "when was the last time anyone was on the moon"},
        {"role": "assistant", "content": "14 December 1972 UTC"}]}
    assert tasks.sample_train("instruct_mix", n=256) == tasks.sample_train("instruct_mix", n=256)
    seen = set()
    for example in mix:
        for line in example["messages"][0]["content"].split("\n"):
            seen.add(_normal(line.split(": ", 1)[1] if line[:10].startswith(("Title", "Background", "Question")) else line))
    overlaps = []
    for name, dataset in tasks.REGISTRY.items():
        if dataset.kind == "chat" or tasks.get(name).offline is None:
            continue
        for example in tasks.load_examples(name):
            texts = (list(example["fields"].values()) + [example["target"]] if "fields" in example
                     else example["context"].split("\n"))
            for text in texts:
                text = _normal(text.removeprefix("Question: "))
                if len(text.split()) >= 4 and text in seen:
                    overlaps.append((name, text))
    assert overlaps == []


def test_registry_covers_every_profile_set_and_sources():
    assert {d.kind for d in tasks.REGISTRY.values()} == set(tasks.KINDS)
    for profile in (profiles.PAPER, profiles.TINY):
        names = {profile.instruction.train_set, *profile.instruction.benchmarks, *profile.instruction.llmbar}
        for plan in profile.tasks:
            names |= {plan.train_set, plan.primary, *plan.in_domain, *plan.ood}
        assert names <= set(tasks.REGISTRY)
        if profile.data_source == "offline":
            assert all(tasks.get(n).offline for n in names)
    xsum = tasks.get("xsum").hub
    assert xsum == tasks.HubSource("EdinburghNLP/xsum", None, "test", "refs/convert/parquet", "default", xsum.note,
                                   provenance=xsum.provenance)
    assert (tasks.get("qqp").hub.path, tasks.get("qqp").hub.split) == ("SetFit/qqp", "test")
    assert (tasks.get("qqp_glue").hub.path, tasks.get("qqp_glue").hub.split) == ("nyu-mll/glue", "validation")
    fixed = profiles.get_profile("paper-fixed")
    assert fixed.task("paws").ood == ("qqp_glue", "stsb_glue") and fixed.task("paws").in_domain == ("paws",)
    assert (tasks.get("rte").hub.name, tasks.get("rte").hub.split) == ("rte", "train")
    assert (tasks.get("cnn").hub.path, tasks.get("cnn").hub.name) == ("abisee/cnn_dailymail", "3.0.0")
    assert set(tasks.get("rte").templates) == {"default", "instruct"}


def test_bad_inputs_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="registered: .*'arc_easy'"):
        tasks.get("arc-easy")
    with pytest.raises(ValueError, match=r"has no format 'inputoutput'; it has \['default', 'instruct'\]"):
        tasks.render(tasks.get("rte"), _first("rte"), "inputoutput")
    with pytest.raises(ValueError, match="source must be one of"):
        tasks.load_examples("rte", source="local")
    with pytest.raises(ValueError, match="no offline copy.*source='hub'.*its labelled entry qqp_glue"):
        tasks.load_examples("qqp")
    with pytest.raises(ValueError, match="no offline copy.*allenai/tulu-v2-sft-mixture"):
        tasks.sample_train("tulu_v2", fraction=0.05)
    with pytest.raises(ValueError, match="no hub source.*source='offline'"):
        tasks.load_examples("instruct_mix", source="hub")
    with pytest.raises(ValueError, match="has 300 rows, fewer than the n=6000"):
        tasks.sample_train("mnli")
    with pytest.raises(KeyError, match="needs field 'hypothesis'"):
        tasks.render(tasks.get("mnli"), {"id": "x", "fields": {"premise": "p"}, "target": "neutral"}, "default")
    with pytest.raises(ValueError, match="chat training set"):
        tasks.render(tasks.get("instruct_mix"), {"id": "x", "messages": []}, "default")
    with pytest.raises(KeyError, match="no 'Answer.0'"):
        tasks.row_value(_jsonl("tweet_qa/test.jsonl")[0], "Answer.0")  # TweetQA test has no answers
    monkeypatch.setattr(tasks, "DATA_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="mnli/validation_matched.jsonl is missing"):
        tasks.load_examples("mnli_matched")
    monkeypatch.setattr(offline, "ASSET_DIR", tmp_path)
    with pytest.raises(offline.MissingAssetError, match="python -m amuro_utils.data.offline"):
        tasks.load_examples("arc_easy")


def test_hub_loading_passes_the_registered_source(monkeypatch):
    commit = "e" * 40  # a test pin: loading reads the pinned commit of the source's branch
    monkeypatch.setattr(tasks, "REGISTRY", tasks.with_pins({"EdinburghNLP/xsum@refs/convert/parquet": commit}))
    calls = []

    def fake_load_dataset(path, name=None, *, split, revision, data_dir):
        calls.append((path, name, split, revision, data_dir))
        return datasets.Dataset.from_list([{"document": f"doc {i}", "summary": f"sum {i}"} for i in range(5)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    sample = tasks.sample_train("xsum_train", n=2, source="hub")
    assert calls == [("EdinburghNLP/xsum", None, "train", commit, "default")]
    order = np.random.default_rng(42).permutation(5)[:2]
    assert [e["id"] for e in sample] == [f"xsum_train-{i}" for i in order]
    assert [e["target"] for e in sample] == [f"sum {i}" for i in order]
