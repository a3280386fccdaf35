"""eval.protocol: FinLoRA's two versions of scoring, each worked by hand from the rules of its code
(../shared/finlora-reference: the paper's test/general_fin/*.py and test/xbrl/xbrl.py at 6993ea9,
today's test/test_dataset.py and test/inference.py at 7e1cf82); the report names the protocol and
puts the paper's Table 3 beside runs that match a paper setting."""

import pytest

from conftest import params_with
from finlora.errors import FinloraError
from finlora import config
from finlora.answers import kind
from finlora.protocols import PROTOCOLS, answer_length
from finlora.report import render
from finlora.tasks import TASKS


def paper(task, targets, answers):
    return PROTOCOLS["finlora-2025-01"].score(TASKS[task], kind(TASKS[task]), [{"target": t} for t in targets], answers)


def today(task, targets, answers):
    return PROTOCOLS["finlora-2025-08"].score(TASKS[task], kind(TASKS[task]), [{"target": t} for t in targets], answers)


def test_paper_sentiment_maps_answers_and_golds_by_direction_over_the_whole_answer():
    # change_target: 'positive' or 'Positive' -> positive, else 'negative' or 'Negative', else neutral.
    # Answers: positive; negative (after the newline: the whole continuation is kept); neutral
    # ("NEGATIVE" is neither spelling); positive. Golds: positive, negative, neutral, neutral.
    scores = paper("fpb", ["positive", "negative", "neutral", "neutral"],
                   ["Positive\nThe news is good", "\nnegative", "NEGATIVE", "moderately positive"])
    # 3 of 4; weighted F1: positive 2/3 (support 1), negative 1 (1), neutral 2/3 (2) -> (2/3 + 1 + 4/3) / 4
    assert scores == {"accuracy": 0.75, "f1_weighted": 0.75}


def test_paper_rules_run_in_finloras_order_when_an_answer_names_two_labels():
    # fpb.py:33-36: 'positive' is looked for before 'negative', so an answer naming both is positive
    # wherever each stands; with the rules swapped both answers would read negative (0 of 2).
    assert paper("fpb", ["positive", "positive"], ["not negative, but positive", "negative, not positive"]) == {
        "accuracy": 1.0, "f1_weighted": 1.0}
    # headline.py:23-25: 'yes' before 'no': "no doubt, yes" is Yes (swapped: No, 0 of 1)
    assert paper("headline", ["Yes"], ["no doubt about it, yes"])["accuracy"] == 1.0


def test_todays_rule_gives_a_tie_at_the_same_place_to_the_longer_label():
    # test_dataset.py's evaluate_accuracy sorts the labels found by where they start; "12" and "1200"
    # both start at 0 in "1200", and its tie order is a set's: here the longer label wins, so both
    # answers are right (the shorter winning would read "1200" as "12": 1 of 2).
    assert today("xbrl_value", ["1200", "12"], ["1200", "12"]) == {"accuracy": 1.0}


def test_paper_nwgi_scores_levels_by_direction_with_sklearns_arguments_swapped():
    # Golds by direction: positive, negative, neutral; answers: positive, positive, neutral -> 2 of 3.
    # nwgi.py calls f1_score(answers, golds): true [pos, pos, neu], predicted [pos, neg, neu]:
    # positive F1 2/3 (support 2), neutral 1 (support 1) -> (4/3 + 1) / 3 = 0.7778 (the other way: 0.5556)
    scores = paper("nwgi", ["strong positive", "mildly negative", "neutral"], ["positive", "positive", "neutral"])
    assert scores == {"accuracy": 0.6667, "f1_weighted": 0.7778}


def test_paper_headline_and_ner_take_the_first_matching_rule():
    # headline.py: 'yes' anywhere -> Yes, else 'no' anywhere (here inside "not") -> No, else ''.
    # Golds Yes, No, No; answers Yes, No, '' -> 2 of 3; F1: Yes 1 (support 1), No 2/3 (support 2) -> 7/9
    assert paper("headline", ["Yes", "No", "No"], ["Yes, it does", "I do not know", "unclear"]) == {
        "accuracy": 0.6667, "f1_weighted": 0.7778}
    # ner.py: organization before person before location: "an organization led by a person" is an organization.
    # Golds person, location; answers organization, location -> 1 of 2; F1: person 0, location 1 -> 0.5
    assert paper("ner", ["person", "location"], ["an organization led by a person", "location"]) == {
        "accuracy": 0.5, "f1_weighted": 0.5}


def test_paper_xbrl_counts_a_gold_answer_inside_the_answer_as_written():
    # xbrl.py: `y in x`, case kept, over the whole answer; accuracy only.
    assert paper("xbrl_value", ["2540000000", "12"], ["The value is 2540000000.\nDone", "1,2"]) == {"accuracy": 0.5}
    assert paper("xbrl_tags", ["us-gaap:Assets", "us-gaap:Assets"], ["US-GAAP:ASSETS", "x us-gaap:Assets"]) == {
        "accuracy": 0.5}


def test_today_the_first_gold_label_found_must_be_the_records_own():
    # inference.py keeps what follows the last "Answer:", stripped; evaluate_accuracy takes, among the
    # test set's gold answers (lower case), the one that starts first in the lower-cased answer.
    # 1: "neutral, not positive" -> neutral first: wrong; 2: "Answer: negative" -> "negative": right;
    # 3: "\nneutral" -> "neutral": right. 2 of 3.
    # F1 over golds [positive, negative, neutral] and [the first answer as given, negative, neutral]:
    # positive 0, negative 1, neutral 1, each support 1 -> 2/3
    assert today("fpb", ["positive", "negative", "neutral"], [" neutral, not positive", "Answer: negative", "\nneutral"]) == {
        "accuracy": 0.6667, "f1_weighted": 0.6667}


def test_today_nwgi_is_scored_on_its_seven_levels():
    # Labels: the three gold levels. "positive" contains none (the paper would count it right);
    # "mildly positive news, not neutral" finds "mildly positive" first. 1 of 3; F1 1/3.
    assert today("nwgi", ["mildly positive", "strong negative", "neutral"],
                 ["positive", "strong negative", "mildly positive news, not neutral"]) == {
        "accuracy": 0.3333, "f1_weighted": 0.3333}


def test_today_finer_batches_are_split_on_commas_and_compared_tag_by_tag():
    # process_batched: record 1 -> (Revenues, revenues), (LongTermDebt, LongTermDebt), (SharePrice, "")
    # (padded); record 2 -> (Goodwill, Goodwill) ("Extra" cut). Matching ignores case: 3 of 4; F1 3/4.
    assert today("finer", ["Revenues,LongTermDebt,SharePrice", "Goodwill"],
                 ["revenues, LongTermDebt\n", "Goodwill,Extra"]) == {"accuracy": 0.75, "f1_weighted": 0.75}


def test_today_values_find_the_first_gold_value_of_the_test_set():
    # "12 and 2540000000": the test set's "12" starts first, so record 1 is wrong; no F1 for numbers.
    assert today("xbrl_value", ["2540000000", "12"], ["12 and 2540000000", "12"]) == {"accuracy": 0.5}


def test_each_protocol_uses_its_answer_lengths_and_the_raw_prompt():
    tasks = ("fpb", "headline", "ner", "finer", "xbrl_tags", "xbrl_value")
    lengths = {protocol: [answer_length(params_with({"eval": {"protocol": protocol}, "model": {"chat_template": False}})
                                        .eval, t) for t in tasks] for protocol in PROTOCOLS}
    assert lengths["finlora-2025-01"] == [5, 20, 20, 60, 60, 60]  # fpb.py, headline.py, ner.py, xbrl.py
    assert lengths["finlora-2025-08"] == [10, 10, 10, 100, 20, 20]  # test_dataset.py's max_new_token_dict
    strict = params_with({"eval": {"max_new_tokens_by_task": {"ner": 3}}}).eval
    assert lengths["strict"][0] == strict.max_new_tokens and answer_length(strict, "ner") == 3
    assert [PROTOCOLS[p].first_line_only for p in PROTOCOLS] == [True, False, False]
    assert tuple(PROTOCOLS) == config.PROTOCOLS  # the names params.yaml is checked against
    with pytest.raises(FinloraError, match="eval.protocol finlora-2025-08 with model.chat_template true"):
        params_with({"eval": {"protocol": "finlora-2025-08"}, "model": {"chat_template": True}})


def test_the_report_names_the_protocol_and_finloras_commit():
    changes = {"tasks": {"sentiment": ["fpb"]}, "eval": {"protocol": "finlora-2025-01"}, "model": {"chat_template": False}}
    sources = {"fpb": {"source": "hub", "dataset": "financial_phrasebank", "revision": "main", "train": 1, "test": 1}}
    text = render(params_with(changes), summary(0.80), sources)
    assert "Evaluation protocol `finlora-2025-01`. FinLoRA's code behind the paper's Table 3 (commit 6993ea9)" in text


def summary(accuracy: float) -> dict:
    scores = {"accuracy": accuracy, "strict_accuracy": accuracy, "f1_weighted": 0.5, "invalid_rate": 0.0,
              "seconds_per_example": 0.1}
    train = {"batch_size_per_device": 16, "world_size": 4, "peak_memory_gb": 20.0, "peak_memory_kind": "cuda",
             "device_hours": 1.0, "wall_s": 900, "tokens_per_s": 1000, "adapter_bytes": 4_500_000, "val_examples": 0}
    return {"fpb": {"base": scores, "lora": {**scores, "accuracy": accuracy + 0.1}, "gain": {"accuracy": 0.1}},
            "train": {"sentiment": train}}


def test_the_report_puts_the_paper_beside_a_matching_run_and_names_the_protocol():
    changes = {"tasks": {"sentiment": ["fpb"]}, "model": {"base": "meta-llama/Llama-3.1-8B-Instruct"},
               "quant": {"bits": 4}, "lora": {"rank": 4}}
    sources = {"fpb": {"source": "hub", "dataset": "financial_phrasebank", "revision": "main", "train": 1, "test": 1}}
    text = render(params_with(changes), summary(0.80), sources)
    assert "Evaluation protocol `strict`" in text
    assert "| base, paper | 68.73 / 0.677 |" in text and "| base, ours - paper (points) | +11.27 |" in text
    assert "| LoRA r4, 4-bit, paper | 86.30 / 0.860 |" in text and "| LoRA r4, 4-bit, ours - paper (points) | +3.70 |" in text
    assert "Average accuracy gain over the base model: +10.00 points over 1 tasks (paper, same tasks: +17.57)." in text
    other = render(params_with({**changes, "lora": {"rank": 8}}), summary(0.80), sources)
    assert ", paper |" not in other and "paper, same tasks" not in other
