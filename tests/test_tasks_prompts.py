import pytest

from finlora.errors import FinloraError
from finlora.models import load_tokenizer
from finlora.prompts import Example, build_context, prompt_ids, training_ids
from finlora.tasks import TASKS, LabelError, fiqa_label


def test_general_prompt_is_the_papers_format():
    example = Example(TASKS["fpb"].to_example({"sentence": "Sales rose.", "label": "positive"}).instruction,
                      "Sales rose.", "positive")
    assert build_context(example) == (
        "Instruction: What is the sentiment of this news? Please choose an answer from "
        "{negative/neutral/positive}.\nInput: Sales rose.\nAnswer: ")


def test_ner_prompt_lists_options_on_its_own_line():
    row = {"instruction": "What is the entity type of 'Oslo' in the input sentence.\n"
                          "Options: location, organization, person", "input": "We met in Oslo.", "output": "Location"}
    context = build_context(TASKS["ner"].example(row))
    assert "in the input sentence.\nOptions: location, organization, person\nInput: We met in Oslo.\nAnswer: " in context
    assert TASKS["ner"].example(row).answer == "location"


def test_labels_come_from_names_not_positions():
    tfns = TASKS["tfns"]
    assert [tfns.example({"text": "t", "label": i}).answer for i in (0, 1, 2)] == ["negative", "positive", "neutral"]
    assert tfns.example({"text": "t", "label": "Bullish"}).answer == "positive"
    assert TASKS["tfns"].example({"text": "t", "label": 1}).instruction.startswith("What is the sentiment of this tweet?")
    nwgi = TASKS["nwgi"]
    levels = {"strong negative": "negative", "moderately negative": "negative", "mildly negative": "negative",
              "neutral": "neutral", "mildly positive": "positive", "moderately positive": "positive",
              "strong positive": "positive"}
    for level, label in levels.items():
        assert nwgi.example({"news": "n", "label": level}).answer == label


def test_fiqa_scores_are_binned_and_posts_are_tweets():
    assert [fiqa_label(s) for s in (-0.5, -0.1, 0.0, 0.09, 0.1, 0.8)] == \
        ["negative", "neutral", "neutral", "neutral", "positive", "positive"]
    example = TASKS["fiqa"].example({"sentence": "s", "sentiment_score": 0.4, "format": "post"})
    assert "this tweet" in example.instruction and example.answer == "positive"


def test_label_outside_the_label_set_is_an_error():
    with pytest.raises(LabelError, match="label 'bullish' is not in the label set") as error:
        TASKS["fpb"].example({"sentence": "s", "label": "bullish"})
    assert "negative, neutral, positive" in str(error.value)
    with pytest.raises(LabelError, match="label id 7 is unknown"):
        TASKS["tfns"].example({"text": "t", "label": 7})


def test_missing_field_names_the_field():
    with pytest.raises(FinloraError, match="record has no field 'news'"):
        TASKS["nwgi"].example({"text": "x", "label": "neutral"})


@pytest.mark.parametrize("chat", [True, False])
def test_answer_is_tokenised_apart_from_the_prompt(tiny_base, chat):
    tokenizer = load_tokenizer(tiny_base)
    context = build_context(Example("What is the sentiment of this news?", "Sales rose.", "positive"))
    ids, labels = training_ids(tokenizer, context, "positive", chat)
    prompt = prompt_ids(tokenizer, context, chat)
    # The training prompt is exactly the evaluation prompt, token for token.
    assert ids[:len(prompt)] == prompt
    assert labels[:len(prompt)] == [-100] * len(prompt)
    learned = [i for i, label in zip(ids, labels) if label != -100]
    assert tokenizer.decode(learned[:-1]) == "positive" and learned[-1] == tokenizer.eos_token_id
    if chat:
        assert tokenizer.decode(prompt).endswith("Answer: <|im_end|>\n<|im_start|>assistant\n")
