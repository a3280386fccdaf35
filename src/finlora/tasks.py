"""The task registry: every fact about a task lives here and every stage reads it.

A task knows its label set, where its public data lives on the Hugging Face Hub, the columns of
a raw row in that data set's own schema, what its source supplies beside the rows (tag names,
filings), the kind of answer it asks for (named here; the kind itself, in finlora.answers, builds
records), and (classification tasks) how one raw row becomes an `Example` (instruction, input, answer). Labels are mapped from the data set's label *names*, never
by position. Instruction wording lives in finlora.prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from finlora.errors import FinloraError
from finlora.prompts import Example, headline_instruction, ner_instruction, review_instruction, sentiment_instruction

SENTIMENT_LABELS = ("negative", "neutral", "positive")
HEADLINE_LABELS = ("yes", "no")
NER_LABELS = ("location", "organization", "person")
YELP_LABELS = ("1", "2", "3", "4", "5")  # stars

PARQUET_REVISION = "refs/convert/parquet"


@dataclass(frozen=True)
class HubDataset:
    """Where the public data lives. `splits` maps our split name to the Hub's. With `pool`, those
    Hub splits are joined and split again as FinLoRA's code splits them (`datasets`'
    train_test_split with `test_fraction` and data.seed): FPB, which has no test split, and FiQA.
    `parquet`: the data set is published with a loading script, which `datasets` 4 and later
    refuse; read the Hub's own parquet conversion of it instead (revision refs/convert/parquet)."""

    path: str
    config: str | None = None
    revision: str = "main"
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    pool: tuple[str, ...] = ()
    test_fraction: float = 0.25
    parquet: bool = False


class LabelError(FinloraError):
    """A raw row whose label is not in the task's label set."""


@dataclass(frozen=True)
class Task:
    name: str
    family: str
    column: str  # the task's column title in the report (the paper's Table 3)
    labels: tuple[str, ...]  # closed label set; empty where the data set defines it (FiNER) or none exists
    hub: HubDataset | None  # None: no public data set in a loadable form (XBRL extraction)
    fields: tuple[str, ...]  # columns a raw row must have (the data set's own schema)
    label_field: str  # the column holding the label (ints become names at download)
    to_example: Callable[[dict], Example] | None = None  # classification tasks only
    answer: str = "label"  # the kind of answer asked for: a key of finlora.answers.KINDS
    levels: dict[str, str] = field(default_factory=dict)  # a finer scale's levels -> labels (NWGI's seven)
    lists_tag_names: bool = False  # prompts list the data set's tag names, which its source supplies (FiNER, FNXL)
    reads_filings: bool = False  # questions are answered from filings, which its source supplies (XBRL extraction)
    in_finlora: bool = True  # FinLoRA publishes its files (data.source finlora reads them)
    description: str = ""

    def check_fields(self, row: dict) -> None:
        missing = [name for name in self.fields if name not in row]
        if missing:
            raise FinloraError(
                f"task {self.name}: record has no field '{missing[0]}'",
                hint=f"a {self.name} record needs fields: {', '.join(self.fields)}",
            )

    def example(self, row: dict) -> Example:
        """The classification example of one raw row (tasks with `to_example`)."""
        self.check_fields(row)
        example = self.to_example(row)
        if example.answer not in self.labels:
            raise LabelError(
                f"task {self.name}: label {example.answer!r} is not in the label set",
                hint=f"valid labels: {', '.join(self.labels)}",
            )
        return example


def instruction_for(task: str, entity: str | None = None, question: str | None = None) -> str:
    """The instruction for new text of `task` (prediction), the same wording training used."""
    if task == "ner":
        if not entity:
            raise FinloraError("task ner needs the entity to classify", hint="pass --entity NAME")
        return ner_instruction(entity, NER_LABELS)
    if get_task(task).to_example is None:
        raise FinloraError(f"finlora predict labels classification tasks; {task} prompts are built from "
                           "whole sentences or filings", hint="pass a ready prompt as {\"context\": ...}")
    if task == "headline":
        if not question:
            raise FinloraError("task headline needs a yes/no question",
                               hint='pass --question "Does the news headline talk about price going up?"')
        return headline_instruction(question)
    if task == "yelp":
        return review_instruction(YELP_LABELS)
    return sentiment_instruction(SENTIMENT_LABELS, "tweet" if task == "tfns" else "news")


def _mapped(label_map: dict[str, str], value: object) -> str:
    name = str(value).strip()
    return label_map.get(name, label_map.get(name.lower(), name.lower()))


# Source label names -> task labels.
# TFNS stores bare integer ids; its dataset card names them 0 Bearish, 1 Bullish, 2 Neutral.
TFNS_ID_NAMES = ("Bearish", "Bullish", "Neutral")
TFNS_LABELS = {"Bearish": "negative", "Bullish": "positive", "Neutral": "neutral"}
# NWGI's seven levels collapse to three by their direction, as FinLoRA's evaluation code scores them
# (a mild move is still a move; FinGPT's older table counted mild levels as neutral).
NWGI_LABELS = {
    "strong negative": "negative",
    "moderately negative": "negative",
    "mildly negative": "negative",
    "neutral": "neutral",
    "mildly positive": "positive",
    "moderately positive": "positive",
    "strong positive": "positive",
}
NWGI_LEVELS = tuple(NWGI_LABELS)


# Yelp review full's ClassLabel names (its card: "1 star" ... "5 stars") -> the stars.
YELP_STARS = {"1 star": "1", "2 star": "2", "3 stars": "3", "4 stars": "4", "5 stars": "5"}


def fiqa_label(score: float) -> str:
    """FiQA-2018 task 1 scores in [-1, 1] binned to three labels (FinGPT's thresholds)."""
    if score < -0.1:
        return "negative"
    return "neutral" if score < 0.1 else "positive"


def _fpb(row: dict) -> Example:
    return Example(sentiment_instruction(SENTIMENT_LABELS), row["sentence"], _mapped({}, row["label"]))


def _fiqa(row: dict) -> Example:
    subject = "tweet" if row["format"] == "post" else "news"
    try:
        score = float(row["sentiment_score"])
    except (TypeError, ValueError):
        raise LabelError(f"task fiqa: sentiment_score {row['sentiment_score']!r} is not a number") from None
    return Example(sentiment_instruction(SENTIMENT_LABELS, subject), row["sentence"], fiqa_label(score))


def _tfns(row: dict) -> Example:
    label = row["label"]
    if isinstance(label, int) and not isinstance(label, bool):
        if not 0 <= label < len(TFNS_ID_NAMES):
            raise LabelError(f"task tfns: label id {label} is unknown",
                             hint="ids: " + ", ".join(f"{i} {n}" for i, n in enumerate(TFNS_ID_NAMES)))
        label = TFNS_ID_NAMES[label]
    return Example(sentiment_instruction(SENTIMENT_LABELS, "tweet"), row["text"], _mapped(TFNS_LABELS, label))


def _nwgi(row: dict) -> Example:
    return Example(sentiment_instruction(SENTIMENT_LABELS), row["news"], _mapped(NWGI_LABELS, row["label"]))


def _yelp(row: dict) -> Example:
    label = row["label"]
    if label not in YELP_STARS:
        raise LabelError(f"task yelp: label {label!r} is not one of the data set's label names",
                         hint=f"names: {', '.join(YELP_STARS)} (ids become names at download)")
    return Example(review_instruction(YELP_LABELS), row["text"], YELP_STARS[label])


# An XBRL question: which filing (a file name next to the questions), whose figures, which concept
# (in words), which fiscal year, and the answer (a us-gaap element name or the value as filed).
XBRL_QUESTION_FIELDS = ("filing", "company", "concept", "fiscal_year", "answer")
RECORD_FIELDS = ("context", "target")  # tasks whose raw rows are FinLoRA's prompt records


def _instruction_record(row: dict) -> Example:
    """FinGPT's instruction data sets (headline, NER) already carry instruction/input/output."""
    return Example(row["instruction"].strip(), row["input"].strip(), _mapped({}, row["output"]))


TASKS: dict[str, Task] = {
    task.name: task
    for task in [
        Task(
            "fpb", "sentiment", "FPB", SENTIMENT_LABELS,
            HubDataset("financial_phrasebank", "sentences_50agree", pool=("train",), parquet=True),
            fields=("sentence", "label"), label_field="label", to_example=_fpb,
            description="Financial PhraseBank news sentences",
        ),
        Task(
            "fiqa", "sentiment", "FiQA", SENTIMENT_LABELS,
            HubDataset("pauri32/fiqa-2018", pool=("train", "validation", "test"), test_fraction=0.226),
            fields=("sentence", "sentiment_score", "format"), label_field="sentiment_score",
            to_example=_fiqa,
            description="FiQA-2018 task 1 headlines and posts, scores binned",
        ),
        Task(
            "tfns", "sentiment", "TFNS", SENTIMENT_LABELS,
            HubDataset(
                "zeroshot/twitter-financial-news-sentiment",
                splits={"train": "train", "test": "validation"},
            ),
            fields=("text", "label"), label_field="label", to_example=_tfns,
            description="Twitter financial news sentiment",
        ),
        Task(
            "nwgi", "sentiment", "NWGI", SENTIMENT_LABELS,
            HubDataset("oliverwang15/news_with_gpt_instructions"),
            fields=("news", "label"), label_field="label", to_example=_nwgi,
            levels=NWGI_LABELS,
            description="News with GPT instructions, 7 levels scored as 3",
        ),
        Task(
            "headline", "headline", "Headline", HEADLINE_LABELS,
            HubDataset("FinGPT/fingpt-headline"),
            fields=("instruction", "input", "output"), label_field="output",
            to_example=_instruction_record,
            description="Gold-price headline yes/no questions",
        ),
        Task(
            "ner", "ner", "NER", NER_LABELS,
            HubDataset("FinGPT/fingpt-ner-cls"),
            fields=("instruction", "input", "output"), label_field="output",
            to_example=_instruction_record,
            description="Entity type of one named entity",
        ),
        Task(
            "yelp", "review", "Yelp", YELP_LABELS,
            HubDataset("Yelp/yelp_review_full", "yelp_review_full"),
            fields=("text", "label"), label_field="label", to_example=_yelp, in_finlora=False,
            description="Yelp review full: a review's stars, 1 to 5 (the LoRA vs QLoRA study's task)",
        ),
        Task(
            "finer", "xbrl tagging", "FiNER", (),
            HubDataset("nlpaueb/finer-139", parquet=True),
            fields=("tokens", "ner_tags"), label_field="ner_tags", answer="tag_list", lists_tag_names=True,
            description="FiNER-139: the US-GAAP tag of each highlighted numeric entity",
        ),
        Task(
            "xbrl_tags", "xbrl extraction", "Tags", (), None,
            fields=XBRL_QUESTION_FIELDS, label_field="answer", answer="tag", reads_filings=True,
            description="the us-gaap element of a described concept in a filing",
        ),
        Task(
            "xbrl_value", "xbrl extraction", "Values", (), None,
            fields=XBRL_QUESTION_FIELDS, label_field="answer", answer="value", reads_filings=True,
            description="the value of a described concept in a filing",
        ),
        # FinLoRA's later benchmark: read from its records ({"context", "target"}) or the sample generator's
        Task(
            "xbrl_formula", "xbrl extraction", "Formulas", (), None,
            fields=XBRL_QUESTION_FIELDS, label_field="answer", answer="expression", reads_filings=True,
            description="a financial ratio of a filing as a formula with the filing's values",
        ),
        Task(
            "fnxl", "xbrl tagging", "FNXL", (), None, fields=RECORD_FIELDS, label_field="target", answer="tag_list",
            lists_tag_names=True,
            description="FNXL: the US-GAAP tag of 30 highlighted entities a prompt, from 587 tags",
        ),
        Task(
            "formula", "financial math", "Math", (), None, fields=RECORD_FIELDS, label_field="target", answer="number",
            description="a named formula applied to a word problem, answered to 2 decimals",
        ),
        Task(
            "xbrl_term", "xbrl term", "Term", (), None, fields=RECORD_FIELDS, label_field="target", answer="text",
            description="a US GAAP term explained in one sentence",
        ),
        Task(
            "financebench", "financebench", "FinanceBench", (), None, fields=RECORD_FIELDS, label_field="target",
            answer="text", description="a question over OCR'd pages of a filing, answered briefly",
        ),
    ]
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise FinloraError(f"unknown task '{name}'", hint=f"known tasks: {', '.join(TASKS)}")
    return TASKS[name]
