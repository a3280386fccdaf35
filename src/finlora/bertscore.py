"""BERTScore F1 of free-text answers (XBRL terms, FinanceBench), FinLoRA's score for them.

Each text's tokens are embedded by the scorer model (`eval.bertscore_model`: FinLoRA's
ProsusAI/finbert by default, any Hub id or local folder), unit-normalised; precision is the mean,
over the answer's tokens, of each one's best cosine similarity with a gold token, recall the same
from the gold's side, F1 their harmonic mean (no idf weights, no baseline rescaling, the model's
last layer). A scorer that cannot be loaded is reported in one line, and no BERTScore is written.
"""

from __future__ import annotations

import torch

from finlora.errors import FinloraError


class BertScorer:
    def __init__(self, model: str):
        try:
            from transformers import AutoModel, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModel.from_pretrained(model).eval()
        except Exception as error:  # offline, a missing folder, not a text encoder
            raise FinloraError(f"BERTScore: cannot load the scorer model {model!r} ({type(error).__name__})",
                               hint="set eval.bertscore_model to a local folder or a reachable Hub id; ROUGE-L is "
                               "reported without it") from None
        self.name = model

    @torch.inference_mode()
    def embeddings(self, texts: list[str]) -> list[torch.Tensor]:
        """Unit-normalised last-layer embeddings of each text's tokens, special tokens left out."""
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                               return_special_tokens_mask=True)
        special = batch.pop("special_tokens_mask").bool()
        hidden = self.model(**batch).last_hidden_state
        keep = batch["attention_mask"].bool() & ~special
        return [torch.nn.functional.normalize(hidden[i][keep[i]], dim=-1) for i in range(len(texts))]

    def f1(self, answers: list[str], golds: list[str], batch_size: int = 16) -> list[float]:
        scores = []
        for start in range(0, len(answers), batch_size):
            answer_tokens = self.embeddings(answers[start:start + batch_size])
            gold_tokens = self.embeddings(golds[start:start + batch_size])
            scores += [pair_f1(a, g) for a, g in zip(answer_tokens, gold_tokens)]
        return scores


def pair_f1(answer: torch.Tensor, gold: torch.Tensor) -> float:
    if len(answer) == 0 or len(gold) == 0:
        return 0.0
    similarity = answer @ gold.T
    precision = similarity.max(dim=1).values.mean().item()
    recall = similarity.max(dim=0).values.mean().item()
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
