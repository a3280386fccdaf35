"""Which task each record of a train file that FinLoRA shares between tasks belongs to, read as
FinLoRA wrote the file. No record is dealt out by turn: a record whose task the file does not
tell is counted and left out (`Attribution.undetermined`).

The sentiment file (`train/finlora_sentiment_train.jsonl`, and the paper's
`train/fingpt_sentiment_train.jsonl`). FinLoRA's `data/process_sentiment_train.py` writes the four
Hub train sets one after another, FPB, FiQA, TFNS, NWGI, unshuffled, and its commented lines
write a set k times in place (FiQA 21, FPB 6, TFNS 2). The paper's file is FinGPT's
fingpt-sentiment-train (FinLoRA's data README), made by FinGPT's recipe: the same sets written
6, 21, 2 and 1 times, then shuffled (seed 42). What a record says of itself:
- its instruction: FPB's say "news", FiQA's "news" for headlines and "tweet" for posts, TFNS's
  "tweet", NWGI's list the seven levels (NWGI's alone: its own task wherever it stands);
- its text: Financial PhraseBank's sentences are tokenized (`The group 's sales rose , ...
  .`; 302 of the 303 FPB records of the development share, none of FiQA's 27 headlines), and
  each FiQA post carries the cashtag it is annotated for (all 31; TFNS's tweets: 91 of 597);
- how many times it was written.

Read in this order, the first that the file bears out:
1. FinLoRA's block order. The distinct records in file order must run FPB, FiQA, TFNS, NWGI:
   NWGI's one run last, no PhraseBank sentence after the first post, no post without a cashtag
   before the last headline. Then from the first post to the last headline is FiQA's; headlines
   before that are FPB's up to FPB's last PhraseBank sentence, posts after it TFNS's from TFNS's
   first tweet without a cashtag. Between lie the blocks' edges. Where the two blocks were
   written a different number of times, an edge record's copies tell. Else the headlines after
   FPB's last PhraseBank sentence are FiQA's (not in FPB's form: wrong only if FPB's set ends on
   one of its rare untokenized lines, 1 in 303), and the posts with a cashtag before TFNS's
   first plain tweet are left out and counted (15 % of TFNS's tweets carry one too).
2. By copies (a shuffled file whose sets were written a different number of times, the paper's):
   the count that headlines and posts share is FiQA's, the other headline count FPB's, the other
   post count TFNS's; a record written exactly as often as one of its candidates' sets is that task's.
3. Neither: NWGI's records by their instruction; every other record is counted and left out.

The XBRL extraction file (`train/xbrl_extract_train.jsonl`, `train/xbrl_train.jsonl`): FinLoRA's
`process_xbrl_extract.py` gathers tags, values, formulas and formula calculations and sorts them
longest prompt first, so order says nothing; each record is told by what its answer provably is
(XBRL_KINDS).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from finlora.answers import NUMBER

FPB, FIQA, TFNS, NWGI = "fpb", "fiqa", "tfns", "nwgi"
HEADLINE, POST, SEVEN_LEVELS = "news", "tweet", "seven-level news"
PHRASEBANK = re.compile(r" [.,;:!?](?:\s|$)| 's\b|\( ")
CASHTAG = re.compile(r"\$[A-Za-z]")

BLOCK_ORDER = "FinLoRA's block order (FPB, FiQA, TFNS, NWGI)"
BY_COPIES = "copies (each task's set written a different number of times, shuffled)"
UNREAD = "neither block order nor copies: only NWGI's instruction is its own"
EDGE_POSTS = "posts with a cashtag after FiQA's last headline, before TFNS's first tweet without one: FiQA's or TFNS's"
NO_ORDER = "news or tweet in a file in neither FinLoRA's block order nor copies: FPB's, FiQA's or TFNS's"
SAME_COPIES = "written a number of times that is not exactly one candidate task's: the copies do not tell"
UNRECOGNISED = "instruction neither news, tweet nor NWGI's seven levels"


@dataclass
class Attribution:
    """A shared file read: each line's task (None: not told), how, and what it counted."""

    tasks: list[str | None]
    reading: str
    written: dict[str, int] = field(default_factory=dict)  # task -> times its set is in the file, where not once
    undetermined: Counter[str] = field(default_factory=Counter)  # why -> records

    def records(self) -> dict[str, int]:
        return dict(sorted(Counter(task for task in self.tasks if task).items()))

    def summary(self) -> dict:
        """For source.json: how the file was read and every task's count, asked for or not."""
        summary: dict = {"read by": self.reading, "records": self.records()}
        if self.written:
            summary["written"] = self.written
        if self.undetermined:
            summary["not told apart"] = dict(self.undetermined)
        return summary


def _instruction(context: str) -> str:
    return context.split("\nInput:", 1)[0].lower()


def sentiment_kind(row: dict) -> str | None:
    instruction = _instruction(str(row.get("context", "")))
    if "mildly" in instruction:
        return SEVEN_LEVELS
    if "tweet" in instruction:
        return POST
    return HEADLINE if "news" in instruction else None


def input_text(row: dict) -> str:
    return str(row.get("context", "")).split("Input:", 1)[-1].rsplit("\nAnswer:", 1)[0].strip()


def is_phrasebank(row: dict) -> bool:
    return bool(PHRASEBANK.search(input_text(row)))


def has_cashtag(row: dict) -> bool:
    return bool(CASHTAG.search(input_text(row)))


def _key(row: dict) -> str:
    return json.dumps([row.get("context"), row.get("target")])


@dataclass
class _Distinct:
    """The file's distinct records in the order they first appear, with their copy counts."""

    rows: list[dict]
    kinds: list[str | None]
    copies: list[int]


def read_sentiment(rows: list[dict]) -> Attribution:
    keys = [_key(row) for row in rows]
    counts = Counter(keys)
    first: dict[str, int] = {}  # record -> its place among the distinct ones
    distinct_rows = []
    for key, row in zip(keys, rows):
        if key not in first:
            first[key] = len(distinct_rows)
            distinct_rows.append(row)
    distinct = _Distinct(distinct_rows, [sentiment_kind(row) for row in distinct_rows], [counts[key] for key in first])
    attribution = in_block_order(distinct) or by_copies(distinct) or unread(distinct)
    owners = attribution.tasks
    attribution.tasks = [owners[first[key]] for key in keys]
    for index, kind in enumerate(distinct.kinds):
        if kind is None:
            attribution.undetermined[UNRECOGNISED] += distinct.copies[index]
    return attribution


def _most_common(values) -> int | None:
    counted = Counter(values).most_common(1)
    return counted[0][0] if counted else None


def _by_count(copies: int, factors: dict[str, int | None]) -> str | None:
    """The one candidate task whose set was written exactly `copies` times (a record its set holds
    twice, written k times, is in the file 2k times: not told)."""
    fitting = [task for task, factor in factors.items() if factor == copies]
    return fitting[0] if len(fitting) == 1 else None


def in_block_order(distinct: _Distinct) -> Attribution | None:
    kinds = distinct.kinds
    levels = [i for i, kind in enumerate(kinds) if kind == SEVEN_LEVELS]
    body = [i for i, kind in enumerate(kinds) if kind in (HEADLINE, POST)]
    if levels and (levels[-1] - levels[0] + 1 != len(levels) or (body and body[-1] > levels[0])):
        return None
    posts = [i for i in body if kinds[i] == POST]
    headlines = [i for i in body if kinds[i] == HEADLINE]
    first_post = posts[0] if posts else len(kinds)
    last_headline = headlines[-1] if headlines else -1
    if any(is_phrasebank(distinct.rows[i]) for i in headlines if i > first_post) \
            or any(not has_cashtag(distinct.rows[i]) for i in posts if i < last_headline):
        return None
    owners: list[str | None] = [None] * len(kinds)
    for i in levels:
        owners[i] = NWGI
    leading = [i for i in headlines if i < first_post]
    trailing = [i for i in posts if i > last_headline]
    last_sentence = max((i for i in leading if is_phrasebank(distinct.rows[i])), default=-1)
    first_plain = min((i for i in trailing if not has_cashtag(distinct.rows[i])), default=len(kinds))
    for i in body:
        if first_post <= i <= last_headline:
            owners[i] = FIQA
        elif i < first_post and i <= last_sentence:
            owners[i] = FPB
        elif i > last_headline and i >= first_plain:
            owners[i] = TFNS
    written = {task: _most_common(distinct.copies[i] for i in body + levels if owners[i] == task)
               for task in (FPB, FIQA, TFNS, NWGI)}
    undetermined: Counter[str] = Counter()
    for edge, (one, other), by_text in ((leading, (FPB, FIQA), FIQA), (trailing, (FIQA, TFNS), None)):
        told_by_copies = written[one] and written[other] and written[one] != written[other]
        for i in (i for i in edge if owners[i] is None):
            owners[i] = _by_count(distinct.copies[i], {one: written[one], other: written[other]}) \
                if told_by_copies else by_text
            if owners[i] is None:
                undetermined[SAME_COPIES if told_by_copies else EDGE_POSTS] += distinct.copies[i]
    return Attribution(owners, BLOCK_ORDER, {task: n for task, n in written.items() if n and n > 1}, undetermined)


def by_copies(distinct: _Distinct) -> Attribution | None:
    """FinGPT's recipe: FiQA's count is the one headlines and posts share."""
    def two_most_common(kind: str) -> set[int]:
        return {n for n, _ in Counter(c for c, k in zip(distinct.copies, distinct.kinds) if k == kind).most_common(2)}

    headline_counts, post_counts = two_most_common(HEADLINE), two_most_common(POST)
    shared = headline_counts & post_counts
    if len(headline_counts) != 2 or len(post_counts) != 2 or len(shared) != 1:
        return None
    fiqa = shared.pop()
    factors = {FPB: (headline_counts - {fiqa}).pop(), FIQA: fiqa, TFNS: (post_counts - {fiqa}).pop()}
    candidates = {HEADLINE: (FPB, FIQA), POST: (FIQA, TFNS)}
    owners: list[str | None] = []
    undetermined: Counter[str] = Counter()
    for kind, copies in zip(distinct.kinds, distinct.copies):
        if kind == SEVEN_LEVELS:
            owners.append(NWGI)
        elif kind in candidates:
            owners.append(_by_count(copies, {task: factors[task] for task in candidates[kind]}))
            if owners[-1] is None:
                undetermined[SAME_COPIES] += copies
        else:
            owners.append(None)
    written = {task: n for task, n in factors.items() if n > 1}
    nwgi = _most_common(c for c, k in zip(distinct.copies, distinct.kinds) if k == SEVEN_LEVELS)
    if nwgi and nwgi > 1:
        written[NWGI] = nwgi
    return Attribution(owners, BY_COPIES, written, undetermined)


def unread(distinct: _Distinct) -> Attribution:
    owners = [NWGI if kind == SEVEN_LEVELS else None for kind in distinct.kinds]
    undetermined = Counter({NO_ORDER: sum(c for c, k in zip(distinct.copies, distinct.kinds) if k in (HEADLINE, POST))})
    return Attribution(owners, UNREAD, {}, +undetermined)


def _question(context: str) -> str:
    """The question of a one-shot XBRL prompt: what follows its last "Question:" (the example
    question comes before it)."""
    return context.rsplit("Question:", 1)[-1].lower()


OPERATOR = re.compile(r"\d\s*[-+*/]\s*[\d(]|\)\s*[-+*/]")
CALCULATION = re.compile(r"formula|calculat|compute")


@dataclass(frozen=True)
class XbrlKind:
    """What an XBRL extraction record's answer provably is, and the task whose it is."""

    name: str
    task: str
    matches: Callable[[str, str], bool]  # (context, target)


XBRL_KINDS = (
    XbrlKind("tag", "xbrl_tags", lambda context, target: target.startswith("us-gaap:")),
    XbrlKind("formula", "xbrl_formula",
             lambda context, target: "formula" in _question(context) and bool(OPERATOR.search(target))),
    # a value question's answer is one of the facts of the filing in its prompt (all 26 of the
    # development share's); a formula's calculated result is not
    XbrlKind("value", "xbrl_value", lambda context, target: bool(NUMBER.fullmatch(target)) and f">{target}<" in context),
    # FinLoRA's formula calculations: no task here yet
    XbrlKind("formula calculation", "xbrl_formula_calculation",
             lambda context, target: bool(NUMBER.fullmatch(target)) and bool(CALCULATION.search(_question(context)))),
)
XBRL_UNTOLD = "answer neither a tag, a formula, one of the filing's facts nor a calculation's result"


def read_xbrl(rows: list[dict]) -> Attribution:
    owners: list[str | None] = []
    undetermined: Counter[str] = Counter()
    for row in rows:
        context, target = str(row.get("context", "")), str(row.get("target", "")).strip()
        kind = next((kind for kind in XBRL_KINDS if kind.matches(context, target)), None)
        owners.append(kind.task if kind else None)
        if kind is None:
            undetermined[XBRL_UNTOLD] += 1
    return Attribution(owners, "each record by its answer (tag, formula, the filing's fact, calculation)", {},
                       undetermined)
