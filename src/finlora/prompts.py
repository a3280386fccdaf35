"""Prompt formats (FinLoRA's data format) and the one way prompts become token ids.

Training and evaluation both call `prompt_ids`, so a test prompt is byte-identical to the
training prompt minus its answer.
"""

from __future__ import annotations

from finlora.tasks import Example


def build_context(example: Example) -> str:
    """The paper's general-task prompt. It ends in "Answer: " with a trailing space."""
    return f"Instruction: {example.instruction}\nInput: {example.input}\nAnswer: "


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
