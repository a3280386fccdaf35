from finlora.metrics import contains, normalize, parse_label, score_labels


def score(answers, golds, labels):
    return score_labels(answers, golds, labels).metrics
from finlora.tasks import SENTIMENT_LABELS


def test_parse_takes_the_first_label_named():
    assert parse_label("Positive.", SENTIMENT_LABELS) == "positive"
    assert parse_label("The sentiment of this news is negative", SENTIMENT_LABELS) == "negative"
    assert parse_label("neutral, not positive", SENTIMENT_LABELS) == "neutral"
    assert parse_label("  NEGATIVE!!", SENTIMENT_LABELS) == "negative"
    assert parse_label("positively", SENTIMENT_LABELS) is None
    assert parse_label("", SENTIMENT_LABELS) is None


def test_containment_is_fooled_where_strict_is_not():
    answers = ["positive, surely not negative", "positive", "I cannot tell"]
    golds = ["negative", "positive", "neutral"]
    result = score(answers, golds, SENTIMENT_LABELS)
    assert result["accuracy"] == round(2 / 3, 4)  # "negative" is contained in the first answer...
    assert result["strict_accuracy"] == round(1 / 3, 4)  # ...but the label it gives first is "positive"
    assert result["invalid_rate"] == round(1 / 3, 4)
    assert result["n"] == 3


def test_weighted_f1_counts_invalid_answers_as_wrong():
    result = score(["positive", "nonsense", "negative", "negative"],
                   ["positive", "neutral", "negative", "negative"], SENTIMENT_LABELS)
    assert result["strict_accuracy"] == 0.75 and result["f1_weighted"] < 1.0
    perfect = score(["positive", "neutral"], ["positive", "neutral"], SENTIMENT_LABELS)
    assert perfect["f1_weighted"] == 1.0 and perfect["accuracy"] == 1.0


def test_normalize():
    assert normalize("  Yes.\n") == "yes" and contains("Yes, it does", "yes") and not contains("yesterday", "yes")
