"""The paper's pairs and groups (which cells each analysis compares); the statistics over them: test_stats.py."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from amuro_utils.config.profiles import PAPER, PAPER_REFERENCE, TINY
from amuro_utils.stats import analysis

# ---------------------------------------------------------------------------------------------------------------
# pairs


@pytest.mark.parametrize("profile", [PAPER, PAPER_REFERENCE])
def test_paper_pairs_are_protocols(profile):
    assert analysis.class_to_gen_pairs(profile) == [("xsum", "mnli"), ("socialiqa", "mnli"), ("xsum", "paws"),
                                                    ("socialiqa", "paws")]
    assert sorted(analysis.gen_to_class_pairs(profile)) == sorted(
        [("paws", "xsum"), ("mnli_matched", "xsum"), ("mnli_matched", "socialiqa"), ("paws", "socialiqa")])
    assert sorted(analysis.ood_pairs(profile)) == sorted(
        [("rte", "mnli"), ("gpt3nli", "mnli"), ("cnn", "xsum"), ("qqp", "paws"), ("stsb", "paws"),
         ("tweetqa", "socialiqa"), ("sciq", "socialiqa")])
    groups = analysis.ood_groups(profile)
    assert {g: sorted(p) for g, p in groups.items()} == {
        "NLI": [("gpt3nli", "mnli"), ("rte", "mnli")], "Summary Generation": [("cnn", "xsum")],
        "Question Generation": [("sciq", "socialiqa"), ("tweetqa", "socialiqa")],
        "Paraphrase Detection": [("qqp", "paws"), ("stsb", "paws")]}


def test_paper_learned_groups():
    groups = analysis.learned_groups(PAPER)
    assert groups["Learned in PT"] == [("sciq_mc", "tulu"), ("hellaswag", "tulu"), ("arc_challenge", "tulu"),
                                       ("arc_easy", "tulu"), ("openbookqa", "tulu"), ("sciq_mc", "tulu")]
    assert groups["Learned in FT"] == [("mnli_matched", "mnli"), ("paws", "paws"), ("xsum", "xsum"),
                                       ("mnli_mismatched", "mnli"), ("xlsum", "xsum"), ("socialiqa", "socialiqa"),
                                       ("boolq", "tulu")]


def test_tiny_profile_pairs_follow_its_tasks(caplog):
    assert analysis.class_to_gen_pairs(TINY) == [("xsum", "mnli"), ("socialiqa", "mnli"), ("xsum", "qqp"),
                                                 ("socialiqa", "qqp")]
    assert analysis.ood_groups(TINY) == {"NLI": [("rte", "mnli"), ("cb", "mnli")],
                                         "Paraphrase Detection": [("stsb_glue", "qqp"), ("mrpc", "qqp")],
                                         "Question Generation": [("sciq", "socialiqa")]}
    groups = analysis.learned_groups(TINY)  # tiny's own list: qqp stands in for paws
    assert groups["Learned in FT"] == [("mnli_matched", "mnli"), ("qqp_glue", "qqp"), ("xsum", "xsum"),
                                       ("socialiqa", "socialiqa"), ("boolq", "instruct_mix")]
    without_own = dataclasses.replace(TINY, learned_in_ft=None)
    with caplog.at_level(logging.INFO, logger="amuro_utils.stats.analysis"):
        groups = analysis.learned_groups(without_own)
    assert groups["Learned in FT"] == [("mnli_matched", "mnli"), ("xsum", "xsum"), ("socialiqa", "socialiqa"),
                                       ("boolq", "instruct_mix")]
    assert "['paws', 'mnli_mismatched', 'xlsum']" in caplog.text


def test_profile_can_supply_its_own_split():
    own = dataclasses.replace(TINY, learned_in_ft=("qqp_glue", "boolq"))
    assert analysis.learned_groups(own)["Learned in FT"] == [("qqp_glue", "qqp"), ("boolq", "instruct_mix")]
    bad = dataclasses.replace(TINY, learned_in_pt=("paws",))
    with pytest.raises(ValueError, match="names 'paws'"):
        analysis.learned_groups(bad)
