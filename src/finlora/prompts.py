"""Prompt formats (FinLoRA's data format): every instruction's wording, and the one way prompts
become token ids.

General tasks: instruction, input, "Answer: ". FiNER: several highlighted-entity questions behind
one instruction that lists the tag names. XBRL extraction: an instruction, the filing's facts as
a fenced XML block, one worked example, then the question.

Training and evaluation both call `prompt_ids`, so a test prompt is byte-identical to the
training prompt minus its answer.
"""

from __future__ import annotations

import numpy as np

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    instruction: str
    input: str
    answer: str


def sentiment_instruction(labels: tuple[str, ...], subject: str = "news") -> str:
    return (
        f"What is the sentiment of this {subject}? "
        f"Please choose an answer from {{{'/'.join(labels)}}}."
    )


def ner_instruction(entity: str, labels: tuple[str, ...]) -> str:
    return (
        f"What is the entity type of '{entity}' in the input sentence.\n"
        f"Options: {', '.join(labels)}"
    )


def review_instruction(labels: tuple[str, ...]) -> str:
    return f"How many stars does this review give? Please choose an answer from {{{'/'.join(labels)}}}."


def headline_instruction(question: str) -> str:
    return f"{question.strip()} Please choose an answer from {{Yes/No}}."


XBRL_INSTRUCTION = (
    "You are a knowledgeable XBRL assistant. Answer the question using the XBRL file below. "
    "Answer concisely: do not output xml, code or explanation."
)
XBRL_QUESTIONS = {  # by the name of the kind of answer asked for (finlora.answers)
    "tag": "What is the US GAAP XBRL tag for {company}'s {concept} for the Fiscal Year ending in FY {year}?",
    "value": "What is the value of {company}'s {concept} for the Fiscal Year ending in FY {year}?",
    "expression": "What was {company}'s {concept} for the Fiscal Year ending in FY {year}? Answer with a formula "
                  "substituted with values.",
}
XBRL_EXAMPLE_ANSWERS = {"tag": "us-gaap:AnExampleTagName", "value": "2540000000",
                        "expression": "(50000000 / 3590000000) * 100"}


def build_context(example: Example) -> str:
    """The paper's general-task prompt. It ends in "Answer: " with a trailing space."""
    return f"Instruction: {example.instruction}\nInput: {example.input}\nAnswer: "


def finer_question(entity: str, sentence: str) -> str:
    return f'What is best tag for entity "{entity}" in sentence: "{sentence}?"'


def finer_context(tag_names: list[str], questions: list[str]) -> str:
    """One prompt for several highlighted entities; the answer is their tags in order."""
    instruction = (
        f"Give the US GAAP XBRL tag of the highlighted entity in each of the {len(questions)} questions. "
        f"Choose from: {', '.join(tag_names)}. "
        f"Answer with {len(questions)} tag{'s' if len(questions) > 1 else ''} in the order of the questions, "
        "separated by commas."
    )
    numbered = "\n".join(f"{number}. {question}" for number, question in enumerate(questions, start=1))
    return build_context(Example(instruction, numbered, ""))


def xbrl_question(kind: str, company: str, concept: str, year: int) -> str:
    return XBRL_QUESTIONS[kind].format(company=company, concept=concept, year=year)


def xbrl_context(kind: str, fact_lines: list[str], question: str) -> str:
    """The one-shot extraction prompt: facts as XML, one worked example of `kind`, the question."""
    example = xbrl_question(kind, "Example company", "income", 2020)
    facts = "\n".join(fact_lines)
    return (f"{XBRL_INSTRUCTION}\nXBRL file:\n```xml\n{facts}\n```\n"
            f"Example question: {example}\nExample answer: {XBRL_EXAMPLE_ANSWERS[kind]}\n"
            f"Question: {question}\nAnswer: ")


def task_marked(context: str, task: str, task_marker: bool) -> str:
    """The prompt with its task named first ("Task: fiqa"), when model.task_marker is on. One
    adapter is trained on every task of its group, and some of them share an instruction word for
    word (FiQA's with FPB's and TFNS's) but not a balance of labels; the marker tells them apart."""
    return f"Task: {task}\n{context}" if task_marker else context


def prompt_ids(tokenizer, context: str, chat_template: bool) -> list[int]:
    """Token ids of a prompt, wrapped as a user turn when the model is a chat model."""
    if chat_template:
        return list(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": context}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=False,
            )
        )
    return tokenizer(context, add_special_tokens=True)["input_ids"]


def training_ids(tokenizer, context: str, target: str, chat_template: bool) -> tuple[list[int], list[int]]:
    """Input ids and labels for one example; only the answer (and its end token) is learned.

    Prompt and answer are tokenised separately and concatenated: tokenising them as one string
    would merge the prompt's trailing space into the answer's first token, the mask would then
    hide the answer, and the model would learn to answer nothing.
    """
    prompt = prompt_ids(tokenizer, context, chat_template)
    answer = tokenizer(target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return prompt + answer, [-100] * len(prompt) + answer


def common_prefix_length(a: list[int], b: list[int]) -> int:
    """How many leading token ids two prompts share (prefix caches in generation, packing in training)."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if differ.size else n
