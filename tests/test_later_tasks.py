"""FinLoRA's later benchmark tasks: formulas, financial math, free text and FNXL, scored with values
worked out by hand; their records load from FinLoRA's files (tests/fixtures/finlora) and from
the sample generator alike."""

import re
from fractions import Fraction

import pytest

from conftest import REPO, params_with, write_filings
from finlora.answers import kind
from finlora.compare import compare_runs
from finlora.errors import FinloraError
from finlora.metrics import expression_value, rouge_l, score_expressions, score_numbers, score_text
from finlora.prepare import prepare
from finlora.protocols import PROTOCOLS
from finlora.scoring import score
from finlora import samples
from finlora.sources import fetch
from finlora.tasks import TASKS

LATER = ("xbrl_formula", "fnxl", "formula", "xbrl_term", "financebench")
FREE_TEXT = ("xbrl_term", "financebench")  # scored by ROUGE-L, no accuracy


@pytest.mark.parametrize("text, value", [
    ("(6226000000 / 38542000000) * 100", Fraction(311300, 19271)),  # 16.1538...
    ("1,200 + 3 * -2", Fraction(1194)), ("((2))", Fraction(2)), ("1.5 / 3", Fraction(1, 2)),
    ("2 ** 8", None), ("__import__('os').system('true')", None), ("1 / 0", None), ("x + 1", None), ("", None),
])
def test_expressions_are_evaluated_by_their_grammar_alone(text, value):
    assert expression_value(text) == value


def test_formula_answers_count_by_their_value():
    golds = ["(6226000000 / 38542000000) * 100"] * 5
    answers = ["(6226000000/38542000000)*100",    # the same formula, spaces aside: right, contained
               "6226000000 / 38542000000 * 100",  # the same value written otherwise: right
               "16.15",                           # the value to two decimals: right
               "16.2",                            # to one decimal: compared at two, 16.15: wrong
               "(38542000000 / 6226000000) * 100"]  # upside down: wrong
    scored = score_expressions(answers, golds)
    assert scored.correct == [True, True, True, False, False]
    assert scored.metrics == {"n": 5, "accuracy": 0.2, "strict_accuracy": 0.6, "invalid_rate": 0.0}


def test_math_answers_are_numbers_at_the_golds_decimals():
    scored = score_numbers(["15092.44", "15,092.441", "The NPV is $15092.44.", "15092.4", "about fifteen thousand"],
                           ["15092.44"] * 5)
    assert scored.correct == [True, True, True, False, False]
    # contained: "15092.44" is in answers 1, 2 (commas aside: "15092.441") and 3
    assert scored.metrics == {"n": 5, "accuracy": 0.6, "strict_accuracy": 0.6, "invalid_rate": 0.2}


def test_rouge_l_is_the_f1_of_the_longest_common_word_subsequence():
    # "the cat sat on the mat" / "the cat is on the mat": LCS "the cat on the mat" = 5 words of 6 and 6
    assert rouge_l("The cat sat on the mat.", "the cat is on the mat") == pytest.approx(5 / 6)
    # 2 of 3 answer words, 2 of 5 gold words: P 2/3, R 2/5, F 2PR/(P+R) = 1/2
    assert rouge_l("amount owed now", "amount owed to suppliers later") == pytest.approx(0.5)
    assert rouge_l("", "anything") == 0.0
    scored = score_text(["The cat sat on the mat.", ""], ["the cat is on the mat", "x"])
    assert scored.correct == [0.8333, 0.0] and scored.metrics == {"n": 2, "rouge_l": 0.4167, "invalid_rate": 0.5}


def test_free_text_runs_are_compared_by_a_signed_rank_test():
    a = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    b = [x + 0.1 for x in a]  # every example higher: the smallest two-sided p of 8 pairs, 2 / 2**8
    result = compare_runs(a, b, "xbrl_term")
    assert (result.only_a, result.only_b) == (0, 8)
    assert result.p_value == pytest.approx(2 / 256)
    assert compare_runs(a, a, "xbrl_term").p_value == 1.0


def test_todays_finlora_scores_math_by_the_first_gold_answer_found_and_text_not_at_all():
    formula = TASKS["formula"]
    records = [{"target": "40.00"}, {"target": "1.50"}]
    # labels: "40.00", "1.50"; answer 1 "1.50 or 40.00": 1.50 first, wrong; answer 2 right
    scores = PROTOCOLS["finlora-2025-08"].score(formula, kind(formula), records, ["1.50 or 40.00", "1.50"])
    assert scores == {"accuracy": 0.5}
    term = TASKS["xbrl_term"]
    assert PROTOCOLS["finlora-2025-08"].score(term, kind(term), [{"target": "a"}], ["a"]) == {}
    with pytest.raises(FinloraError, match="finlora-2025-01: FinLoRA's code of that version has no task formula"):
        PROTOCOLS["finlora-2025-01"].check_scores("formula")


@pytest.mark.parametrize("task", LATER)
def test_each_later_task_prepares_from_finloras_files_and_from_the_sample(task, tmp_path):
    params = params_with({"data": {"source": "finlora", "local_dir": str(REPO / "tests" / "fixtures" / "finlora"),
                                   "train_size": 100, "test_size": 100, "sizes": {}}})
    raw = fetch(TASKS[task], params.data)
    records = prepare(TASKS[task], raw.splits["test"], tmp_path, params, raw.tag_names).records
    assert [r["target"] for r in records] == [r["target"] for r in raw.splits["test"]]
    golds = [r["target"] for r in records]
    scored = score(TASKS[task], records, golds, raw.tag_names)
    assert scored.metrics["rouge_l" if task in FREE_TEXT else "strict_accuracy"] == 1.0

    generated = samples.generate(task, 4, 3, seed=42)
    sample_params = params_with({})
    built = prepare(TASKS[task], generated["splits"]["test"], tmp_path, sample_params, generated.get("tag_names"),
                    write_filings(generated, tmp_path), fits=lambda context, target: True).records
    assert len(built) == 3
    metrics = score(TASKS[task], built, [r["target"] for r in built], [t for r in built for t in r.get("tags", [])]).metrics
    assert metrics["rouge_l" if task in FREE_TEXT else "strict_accuracy"] == 1.0  # each answer its own gold


def test_the_sample_formula_questions_are_the_filings_own_figures(tmp_path):
    generated = samples.generate("xbrl_formula", 3, 2, seed=42)
    record = prepare(TASKS["xbrl_formula"], generated["splits"]["test"][:1], tmp_path, params_with({}), None,
                     write_filings(generated, tmp_path)).records[0]
    numerator, denominator = re.findall(r"\d+", record["target"].removesuffix(" * 100"))
    assert f">{numerator}<" in record["context"] and f">{denominator}<" in record["context"]
    assert "Answer with a formula substituted with values." in record["context"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A randomly initialised BERT of two small layers with a word-level vocabulary: the scorer
    model's code path, as a tiny Llama stands in for the base model."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = "amount owed to suppliers for goods and services due within one year of borrowings cash".split()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(folder)
    return folder


def test_bertscore_matches_greedy_cosine_matching_done_here(tiny_bert):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from finlora.bertscore import BertScorer

    scorer = BertScorer(str(tiny_bert))
    answer, gold = "amount owed to suppliers", "amount owed for goods and services due within one year"
    assert scorer.f1([gold], [gold]) == [pytest.approx(1.0)]
    tokenizer, model = AutoTokenizer.from_pretrained(tiny_bert), AutoModel.from_pretrained(tiny_bert).eval()
    with torch.no_grad():  # one text at a time, no padding: each token's vector, [CLS] and [SEP] dropped
        a, g = (model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0, 1:-1] for text in (answer, gold))
    a, g = a / a.norm(dim=1, keepdim=True), g / g.norm(dim=1, keepdim=True)
    precision = (a @ g.T).max(dim=1).values.mean().item()
    recall = (a @ g.T).max(dim=0).values.mean().item()
    assert precision < 1
    expected = 2 * precision * recall / (precision + recall)
    assert scorer.f1([answer, gold], [gold, gold]) == [pytest.approx(expected, abs=1e-5), pytest.approx(1.0)]


def test_an_unloadable_scorer_is_said_once_and_no_bertscore_is_written(tmp_path, capsys):
    from finlora.evaluation import BertScoreOnce

    once = BertScoreOnce(str(tmp_path / "no-such-model"))
    assert once.scorer("xbrl_term") is None and once.scorer("financebench") is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "xbrl_term: BERTScore: cannot load the scorer model" in err[0]
    assert err[0].endswith("reporting ROUGE-L only")
    assert BertScoreOnce("").scorer("xbrl_term") is None and capsys.readouterr().err == ""
