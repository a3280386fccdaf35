"""XBRL extraction: reading instance documents, one-shot prompts, the prompt budget, scoring."""

import json
from collections import Counter
from pathlib import Path

from decimal import Decimal

import pytest

from conftest import params_with, write_filings
from finlora import xbrl
from finlora.errors import FinloraError
from finlora.metrics import parse_number, score_tags, score_values
from finlora.prepare import prepare
from finlora import samples
from finlora.tasks import TASKS

FIXTURES = Path(__file__).parent / "fixtures" / "xbrl"
REAL_FORMAT = FIXTURES / "brkl-20230930.xml"


def params(**overrides):
    return params_with({"tasks": {"xbrl": ["xbrl_tags", "xbrl_value"]}, **overrides})


def question(**fields):
    return {"filing": REAL_FORMAT.name, "company": "Brookline Instruments", "concept": "total assets",
            "fiscal_year": 2023, "answer": "9354000000", **fields}


def test_a_real_format_filing_parses_with_namespaces_units_and_dimensions():
    filing = xbrl.parse_filing(REAL_FORMAT)
    assert len(filing.contexts) == 6
    assert filing.contexts["c-5"].dimensional and not filing.contexts["c-1"].dimensional
    assert filing.contexts["c-3"].instant
    assert filing.fiscal_year_end(2023).isoformat() == "2023-09-30"  # a 53-week year
    concepts = {fact.concept for fact in filing.facts}
    assert "BacklogAmount" not in concepts  # company extension, not us-gaap
    assert "LongTermDebtNoncurrent" not in concepts  # xsi:nil, no value


def test_facts_of_a_fiscal_year_leave_out_other_periods_quarters_and_segments():
    facts = xbrl.parse_filing(REAL_FORMAT).facts_for_year(2023)
    by_concept = {fact.concept: fact for fact in facts}
    assert by_concept["RevenueFromContractWithCustomerExcludingAssessedTax"].value == "4871000000"
    assert by_concept["Assets"].value == "9354000000"
    assert len(facts) == 7 and {f.context for f in facts} == {"c-1", "c-3"}
    prior = {fact.concept: fact.value for fact in xbrl.parse_filing(REAL_FORMAT).facts_for_year(2022)}
    assert prior == {"RevenueFromContractWithCustomerExcludingAssessedTax": "4402000000",
                     "NetIncomeLoss": "-45000000", "Assets": "8871000000"}


def test_a_fact_renders_as_one_line_with_long_text_cut():
    facts = {f.concept: f for f in xbrl.parse_filing(REAL_FORMAT).facts_for_year(2023)}
    line = xbrl.fact_line(facts["EarningsPerShareDiluted"], 100)
    assert line == ('<us-gaap:EarningsPerShareDiluted contextRef="c-1" unitRef="usdPerShare" decimals="2">'
                    '3.87</us-gaap:EarningsPerShareDiluted>')
    text = xbrl.fact_line(facts["IncomeTaxDisclosureTextBlock"], 100)
    assert "\n" not in text and text.count("&lt;div&gt;") == 2  # the HTML stays escaped XML text
    inner = text.split(">", 1)[1].rsplit("<", 1)[0]
    assert len(inner.replace("&lt;", "<").replace("&gt;", ">")) == 100


def test_malformed_xml_names_the_file_and_line(tmp_path):
    broken = tmp_path / "broken.xml"
    lines = REAL_FORMAT.read_text().splitlines()
    lines[39] = lines[39].replace("</xbrli:period>", "</xbrli:peri>")  # line 40
    broken.write_text("\n".join(lines))
    with pytest.raises(FinloraError, match=r"broken\.xml:40: not well-formed XML"):
        xbrl.parse_filing(broken)


def test_a_question_about_a_year_the_filing_lacks_is_a_clear_error():
    with pytest.raises(FinloraError, match="no annual context ends in fiscal year 2019"):
        xbrl.parse_filing(REAL_FORMAT).facts_for_year(2019)


def test_one_shot_prompt_shape_and_targets():
    prepared = prepare(TASKS["xbrl_value"], [question()], Path("q.jsonl"), params(), filings=FIXTURES)
    [record] = prepared.records
    context = record["context"]
    assert context.startswith("Task: xbrl_value\nYou are a knowledgeable XBRL assistant.")  # model.task_marker
    assert "XBRL file:\n```xml\n<us-gaap:" in context and "\n```\nExample question: " in context
    assert "Example answer: 2540000000\nQuestion: What is the value of Brookline Instruments's total assets " \
           "for the Fiscal Year ending in FY 2023?\nAnswer: " in context
    assert context.endswith("Answer: ") and record["target"] == "9354000000"
    assert "4402000000" not in context and "3109000000" not in context  # other year, segment
    tags = prepare(TASKS["xbrl_tags"], [question(answer="us-gaap:Assets")], Path("q.jsonl"), params(),
                   filings=FIXTURES)
    assert "Example answer: us-gaap:AnExampleTagName" in tags.records[0]["context"]


def test_prompts_over_the_budget_are_dropped_and_counted_never_cut():
    record = prepare(TASKS["xbrl_value"], [question()], Path("q.jsonl"), params(), filings=FIXTURES).records[0]
    tight = params(xbrl={"max_prompt_chars": len(record["context"]) - 1})
    prepared = prepare(TASKS["xbrl_value"], [question(), question()], Path("q.jsonl"), tight, filings=FIXTURES)
    assert prepared.records == [] and prepared.dropped_over_budget == 2
    exact = params(xbrl={"max_prompt_chars": len(record["context"])})
    assert prepare(TASKS["xbrl_value"], [question()], Path("q.jsonl"), exact, filings=FIXTURES).records == [record]


def test_bad_questions_stop_with_file_and_line_or_are_skipped_and_counted():
    rows = [question(), question(fiscal_year=2019), question(filing="missing.xml")]
    with pytest.raises(FinloraError, match=r"q\.jsonl:2: .*no annual context ends in fiscal year 2019"):
        prepare(TASKS["xbrl_value"], rows, Path("q.jsonl"), params(), filings=FIXTURES)
    skipping = params(data={"on_bad_record": "skip"})
    prepared = prepare(TASKS["xbrl_value"], rows, Path("q.jsonl"), skipping, filings=FIXTURES)
    assert len(prepared.records) == 1 and prepared.skipped_bad_records == 2


def test_sample_filings_are_valid_and_every_answer_is_in_its_prompt(tmp_path):
    for task in ("xbrl_tags", "xbrl_value"):
        raw = samples.generate(task, 40, 20, seed=3)
        assert raw == samples.generate(task, 40, 20, seed=3)
        write_filings(raw, tmp_path)
        rows = raw["splits"]["train"] + raw["splits"]["test"]
        keys = [(r["company"], r["concept"], r["fiscal_year"]) for r in rows]
        assert len(set(keys)) == len(keys)  # no question twice, so none in both splits
        prepared = prepare(TASKS[task], rows, Path("q.jsonl"), params(), filings=tmp_path)
        for record in prepared.records:
            needle = f"<{record['target']} " if task == "xbrl_tags" else f">{record['target']}</"
            assert needle in record["context"]
        # like FinLoRA's, several questions are asked of one filing's fiscal year: prompts share their bodies
        bodies = Counter(record["context"].rsplit("\nQuestion:", 1)[0] for record in prepared.records)
        assert max(bodies.values()) == samples.xbrl.QUESTIONS_PER_PROMPT
        assert len(prepared.records) / len(bodies) >= 3
    concepts = {f.concept for name in raw["filings"] for f in xbrl.parse_filing(tmp_path / name).facts}
    assert len(concepts) >= 30


def test_tag_scoring_normalises_prefix_and_case():
    golds = ["us-gaap:Assets", "us-gaap:Goodwill", "us-gaap:NetIncomeLoss", "us-gaap:Revenues"]
    scored = score_tags(["us-gaap:Assets", "goodwill", "The tag is us-gaap:NetIncomeLoss", ""], golds)
    assert scored.metrics["strict_accuracy"] == 0.5  # exact after normalising
    assert scored.metrics["accuracy"] == 0.75  # the paper's containment also takes the sentence
    assert scored.metrics["invalid_rate"] == 0.25
    assert scored.parsed[:2] == ["us-gaap:Assets", "us-gaap:Goodwill"]


@pytest.mark.parametrize("text, number", [
    ("9354000000", 9354000000), ("$9,354,000,000", 9354000000), ("9.354 billion", 9354000000),
    ("$ 612 million.", 612000000), ("(45,000,000)", -45000000), ("-45000000", -45000000),
    ("3.87", Decimal("3.87")), (".5 thousand", 500), ("none", None),
])
def test_numbers_are_read_with_separators_currency_and_scale_words(text, number):
    assert parse_number(text) == number


def test_value_scoring_is_numeric_and_exact():
    golds = ["9354000000", "3.87", "-45000000", "612000000"]
    scored = score_values(["$9,354 million", "3.9", "(45,000,000)", "I don't know"], golds)
    assert scored.metrics["strict_accuracy"] == 0.5  # 3.9 is not 3.87
    assert scored.metrics["invalid_rate"] == 0.25
    assert scored.confusion is None


def test_xbrl_extraction_has_no_hub_source():
    with pytest.raises(FinloraError, match="task xbrl_tags with data.source hub"):
        params_with({"tasks": {"xbrl": ["xbrl_tags"]}, "data": {"source": "hub"}})


def test_local_questions_name_filings_in_the_filings_folder(tmp_path):
    from finlora.sources import fetch

    folder = tmp_path / "xbrl_value"
    (folder / "filings").mkdir(parents=True)
    (folder / "filings" / REAL_FORMAT.name).write_bytes(REAL_FORMAT.read_bytes())
    (folder / "train.jsonl").write_text(json.dumps(question()) + "\n")
    (folder / "test.jsonl").write_text(json.dumps(question(filing="other.xml")) + "\n")
    data = params_with({"data": {"source": "local", "local_dir": str(tmp_path)}}).data
    with pytest.raises(FinloraError, match="names filing 'other.xml', which is not in"):
        fetch(TASKS["xbrl_value"], data)
    (folder / "test.jsonl").write_text(json.dumps(question(fiscal_year=2022, answer="8871000000")) + "\n")
    raw = fetch(TASKS["xbrl_value"], data)
    assert list(raw.filings) == [REAL_FORMAT.name] and len(raw.splits["test"]) == 1
