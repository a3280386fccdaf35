"""Offline FiNER-139 sample: filing sentences whose numeric entities carry US-GAAP tags that follow
from their wording, built as a `datasets.DatasetDict` in FiNER-139's own schema (id, tokens, IOB
`ner_tags` as ClassLabel ids), then read by the same code that reads the Hub copy.

The tags are real FiNER-139 entity types; the sentences are written by this project.
"""

from __future__ import annotations

import random

# Clause templates: "<<v>>" marks the tagged numeric token. Wording decides the tag, and several
# tags share wording (debt amounts, tax amounts and rates, lease amounts and terms) so the model
# has to read the whole clause.
CLAUSES: dict[str, list[str]] = {
    "Revenues": ["total revenues were $ <<v>> million for {year}",
                 "revenues increased to $ <<v>> million in fiscal {year}"],
    "LongTermDebt": ["long-term debt totaled $ <<v>> million at December 31 , {year}",
                     "the carrying amount of long-term debt was $ <<v>> million"],
    "DebtInstrumentFaceAmount": ["the Company issued senior notes with a principal amount of $ <<v>> million",
                                 "the term loan has an aggregate principal amount of $ <<v>> million"],
    "DebtInstrumentInterestRateStatedPercentage": ["the notes bear interest at a fixed rate of <<r>> % per annum",
                                                   "the loan carries a stated interest rate of <<r>> %"],
    "EffectiveIncomeTaxRateContinuingOperations": ["the effective tax rate was <<t>> % for {year}",
                                                   "our effective income tax rate decreased to <<t>> %"],
    "IncomeTaxExpenseBenefit": ["income tax expense was $ <<v>> million for {year}",
                                "the provision for income taxes amounted to $ <<v>> million"],
    "CommonStockSharesAuthorized": ["the Company is authorized to issue <<s>> shares of common stock",
                                    "the charter authorizes <<s>> shares of common stock"],
    "StockRepurchaseProgramAuthorizedAmount1": [
        "the Board authorized the repurchase of up to $ <<v>> million of common stock",
        "the share repurchase program allows purchases of up to $ <<v>> million"],
    "ShareBasedCompensation": ["stock-based compensation expense was $ <<v>> million in {year}",
                               "share-based compensation of $ <<v>> million was recognized"],
    "AmortizationOfIntangibleAssets": ["amortization expense for intangible assets was $ <<v>> million",
                                       "intangible asset amortization totaled $ <<v>> million in {year}"],
    "Goodwill": ["goodwill of $ <<v>> million was recorded",
                 "the carrying amount of goodwill was $ <<v>> million"],
    "LineOfCreditFacilityMaximumBorrowingCapacity": [
        "the revolving credit facility provides for borrowings of up to $ <<v>> million",
        "the maximum borrowing capacity under the credit agreement is $ <<v>> million"],
    "OperatingLeaseLiability": ["operating lease liabilities were $ <<v>> million as of December 31 , {year}",
                                "the present value of operating lease liabilities was $ <<v>> million"],
    "LesseeOperatingLeaseTermOfContract": ["the leases have remaining terms of up to <<n>> years",
                                           "office leases run for terms of <<n>> years"],
    "BusinessAcquisitionPercentageOfVotingInterestsAcquired": [
        "the Company acquired <<p>> % of the voting interests of {company}",
        "we purchased <<p>> % of the outstanding shares of {company}"],
    "SaleOfStockPricePerShare": ["the Company sold common stock at $ <<d>> per share",
                                 "shares were issued in the offering at a price of $ <<d>> per share"],
}
TAGS = list(CLAUSES)
OPENERS = ["During {year} ,", "As disclosed in Note {note} ,", "In {month} {year} ,", "As of year end ,",
           "For the year ended December 31 , {year} ,"]
MONTHS = ["January", "March", "May", "July", "September", "November"]
TARGETS = ["Pellston Labs", "Orrin Analytics", "Brightwater Holdings", "Cascade Tooling", "Delmar Freight"]


def _number(rng: random.Random, kind: str) -> str:
    if kind == "v":  # millions, as filings write them
        return f"{rng.randint(5, 9800) / 10:,.1f}" if rng.random() < 0.5 else f"{rng.randint(12, 4900):,}"
    if kind in "prt":  # percentages: acquired stakes, interest rates, tax rates
        low, high = {"p": (200, 1000), "r": (10, 120), "t": (100, 350)}[kind]
        return f"{rng.randint(low, high) / 10:.1f}" if rng.random() < 0.6 else str(rng.randint(low, high) // 10)
    if kind == "s":
        return f"{rng.choice([100, 200, 250, 500, 750, 1000, 1500]) * 1_000_000:,}"
    if kind == "n":
        return str(rng.randint(2, 25))
    return f"{rng.randint(500, 19900) / 100:.2f}"  # "d": dollars per share


def sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    """Tokens and IOB tag names of one sentence with one to three tagged entities."""
    tags = rng.sample(TAGS, rng.choice([1, 2, 2, 3]))
    fill = {"year": rng.randint(2016, 2023), "note": rng.randint(3, 18), "month": rng.choice(MONTHS),
            "company": rng.choice(TARGETS)}
    words = rng.choice(OPENERS).format(**fill).split()
    labels = ["O"] * len(words)
    for position, tag in enumerate(tags):
        if position:
            words.append(";" if rng.random() < 0.3 else "and")
            labels.append("O")
        for word in rng.choice(CLAUSES[tag]).format(**fill).split():
            if word.startswith("<<"):
                words.append(_number(rng, word[2]))
                labels.append(f"B-{tag}")
            else:
                words.append(word)
                labels.append("O")
    return words + ["."], labels + ["O"]


def dataset(n_train: int, n_test: int, seed: int):
    """A DatasetDict with FiNER-139's features: distinct sentences, no test text in train."""
    import datasets

    names = ["O"] + [f"{prefix}-{tag}" for tag in TAGS for prefix in ("B", "I")]
    features = datasets.Features({
        "id": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
    })
    rng = random.Random(f"finer-{seed}")
    rows, seen = [], set()
    while len(rows) < n_train + n_test:
        tokens, labels = sentence(rng)
        if " ".join(tokens) not in seen:
            seen.add(" ".join(tokens))
            rows.append({"id": str(len(rows)), "tokens": tokens, "ner_tags": [names.index(t) for t in labels]})
    split = {"train": rows[:n_train], "test": rows[n_train:]}
    return datasets.DatasetDict({
        name: datasets.Dataset.from_list(split_rows, features=features) for name, split_rows in split.items()
    })
