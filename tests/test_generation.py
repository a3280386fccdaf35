from finlora import models
from finlora.generation import first_line, generate_answers, left_pad
from finlora.prompts import build_context, prompt_ids
from finlora.sources import sample
from finlora.tasks import TASKS


def test_left_padding_aligns_prompt_ends():
    batch = left_pad([[5, 6, 7], [8]], pad_id=0, device="cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_batch_size_does_not_change_the_answers(tiny_base):
    tokenizer = models.load_tokenizer(tiny_base)
    model = models.load_base(tiny_base).eval()
    rows = sample.generate("ner", 1, 12, seed=3)["test"] + sample.generate("fpb", 1, 12, seed=3)["test"][:4]
    tasks = ["ner"] * 12 + ["fpb"] * 4
    prompts = [prompt_ids(tokenizer, build_context(TASKS[t].example(r)), True) for t, r in zip(tasks, rows)]
    one = generate_answers(model, tokenizer, prompts, batch_size=1, max_new_tokens=6, progress=False)
    eight = generate_answers(model, tokenizer, prompts, batch_size=8, max_new_tokens=6, progress=False)
    assert one == eight
    assert len(set(len(p) for p in prompts)) > 1  # the batches really were padded


def test_first_line():
    assert first_line("  positive\nExplanation: ...") == "positive" and first_line("") == ""
