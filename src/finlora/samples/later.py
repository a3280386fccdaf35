"""Offline samples of FinLoRA's later benchmark tasks, written directly as FinLoRA's records
(`{"context", "target"}`, FinanceBench with `pages` and `url`) in the forms its files use:
financial math word problems with worked answers, XBRL terms with our own one-sentence
explanations, FinanceBench-style questions over a fictitious filing's pages, and FNXL-style
batched tag questions. Deterministic in (task, sizes, seed); no test prompt appears in train.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable

from finlora.samples.xbrl import COMPANIES, CONCEPTS

TASKS = ("formula", "xbrl_term", "financebench", "fnxl")


def generate(task: str, n_train: int, n_test: int, seed: int) -> dict:
    rng = random.Random(f"{task}-{seed}")
    make = GENERATORS[task]
    records, seen = [], set()
    for _ in range(50 * (n_train + n_test)):
        record = make(rng)
        if record["context"] not in seen:
            seen.add(record["context"])
            records.append(record)
        if len(records) == n_train + n_test:
            return {"splits": {"train": records[:n_train], "test": records[n_train:]}}
    raise ValueError(f"the {task} sample has {len(records)} distinct prompts, fewer than {n_train + n_test} asked for")


# --- Financial math ------------------------------------------------------------------------------

def cents(value: Decimal | float) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _math(name: str, formula: str, explanation: str, question: str, answer: Decimal | float) -> dict:
    return {"context": f"Use formula {name} to answer the question. Answer with a numerical answer with 2 decimal "
            f"places and with no explanations or other text. Formula: {formula}, Explanation: {explanation}. "
            f"Question: \"{question}\". Answer:", "target": cents(answer)}


def _formula(rng: random.Random) -> dict:
    kind = rng.randrange(6)
    if kind == 0:
        p, r, t = rng.randrange(10, 200) * 100, rng.randrange(2, 12), rng.randrange(1, 10)
        return _math("Simple Interest", "I = P * r * t", "P: principal, r: annual rate, t: years",
                     f"Calculate the simple interest on a ${p:,} loan at {r}% a year for {t} years.",
                     Decimal(p) * r * t / 100)
    if kind == 1:
        pv, r, n = rng.randrange(5, 100) * 100, rng.randrange(2, 10), rng.randrange(2, 8)
        return _math("Future Value", "FV = PV * (1 + r)^n", "PV: present value, r: rate per period, n: periods",
                     f"What will ${pv:,} grow to at {r}% a year, compounded yearly, after {n} years?",
                     Decimal(pv) * (1 + Decimal(r) / 100) ** n)
    if kind == 2:
        cost = rng.randrange(5, 200) * 100
        sale = cost + rng.randrange(-cost // 200, cost // 50) * 100
        return _math("Return on Investment (ROI)", "ROI = (Gain - Cost) / Cost * 100", "Gain: proceeds, Cost: amount invested",
                     f"An investor buys shares for ${cost:,} and sells them for ${sale:,}. What is the ROI in percent?",
                     Decimal(sale - cost) / cost * 100)
    if kind == 3:
        revenue = rng.randrange(20, 900) * 1000
        cogs = revenue * rng.randrange(30, 85) // 100
        return _math("Gross Margin", "GM = (Revenue - COGS) / Revenue * 100", "COGS: cost of goods sold",
                     f"A company sells ${revenue:,} of goods that cost it ${cogs:,}. What is its gross margin in percent?",
                     Decimal(revenue - cogs) / revenue * 100)
    if kind == 4:
        assets, liabilities = rng.randrange(5, 500) * 1000, rng.randrange(5, 400) * 1000
        return _math("Current Ratio", "CR = Current Assets / Current Liabilities", "both at the balance sheet date",
                     f"A firm has current assets of ${assets:,} and current liabilities of ${liabilities:,}. "
                     "What is its current ratio?", Decimal(assets) / liabilities)
    fixed, price = rng.randrange(5, 200) * 1000, rng.randrange(10, 90)
    variable = rng.randrange(2, price - 1)
    return _math("Break-even Point", "BEP = Fixed Costs / (Price - Variable Cost)", "per unit price and variable cost",
                 f"Fixed costs are ${fixed:,}, each unit sells for ${price} and costs ${variable} to make. How many "
                 "units break even?", Decimal(fixed) / (price - variable))


# --- XBRL terms ----------------------------------------------------------------------------------

TERMS = [  # (term, what it is an amount of): our own wording
    ("Accounts Payable", "money owed to suppliers for goods and services received"),
    ("Accounts Receivable, Net", "money customers owe for goods and services delivered, less an allowance for doubtful accounts"),
    ("Accrued Liabilities", "expenses incurred but not yet paid, such as wages and interest"),
    ("Deferred Revenue", "payments received before the goods or services they pay for are delivered"),
    ("Operating Lease Liability", "the present value of lease payments not yet made under operating leases"),
    ("Long-Term Debt", "borrowings under notes, bonds and loans"),
    ("Deferred Tax Assets, Net", "future tax deductions from temporary differences and carryforwards, less a valuation allowance"),
    ("Derivative Liabilities", "the fair value of derivative contracts in a loss position"),
    ("Prepaid Expense", "payments made in advance for goods or services to be received"),
    ("Contract with Customer, Liability", "the obligation to deliver goods or services for which consideration was received"),
    ("Finance Lease Liability", "the present value of lease payments not yet made under finance leases"),
    ("Other Liabilities", "obligations not separately disclosed in the balance sheet"),
]
QUALIFIERS = [("Current", ", due within one year or the normal operating cycle"),
              ("Noncurrent", ", due after one year or beyond the normal operating cycle"), ("", "")]


def _term(rng: random.Random) -> dict:
    (term, core), (qualifier, timing) = rng.choice(TERMS), rng.choice(QUALIFIERS)
    name = f"{term}, {qualifier}" if qualifier else term
    return {"context": f"Explain this XBRL term briefly in one sentence: {name}. Answer:",
            "target": f"Amount of {core}{timing}."}


# --- FinanceBench --------------------------------------------------------------------------------

def _financebench(rng: random.Random) -> dict:
    company, _, _, scale = rng.choice(COMPANIES)
    year = rng.randrange(2019, 2024)
    revenue, prior = round(scale * rng.uniform(0.8, 1.2)), round(scale * rng.uniform(0.8, 1.2))
    income, cash = round(revenue * rng.uniform(0.04, 0.2)), round(revenue * rng.uniform(0.1, 0.4))
    page = rng.randrange(30, 90)
    text = (f"{company}\nConsolidated Statements of Operations\n(in millions)\n{year}\n{year - 1}\n"
            f"Total revenue\n${revenue:,}\n${prior:,}\nNet income\n${income:,}\nCash and cash equivalents\n${cash:,}")
    question, answer = rng.choice([
        (f"What was {company}'s total revenue in FY{year}?", f"${revenue:,} million."),
        (f"What was {company}'s net income in FY{year}?", f"${income:,} million."),
        (f"How much cash and cash equivalents did {company} hold at the end of FY{year}?", f"${cash:,} million."),
        (f"Did {company}'s revenue grow in FY{year}?",
         f"{'Yes' if revenue > prior else 'No'}, from ${prior:,} million to ${revenue:,} million."),
    ])
    return {"context": "Answer the following question very briefly using scanned text from pages. No explanation "
            f"needed. Question: {question}\nDocument Pages Context:\nPage {page}:\n{text}\n\nAnswer:",
            "target": answer, "pages": [page], "url": f"https://example.com/{company.split()[0].lower()}-10k-{year}.pdf"}


# --- FNXL ----------------------------------------------------------------------------------------

FNXL_TAGS = [concept for concept, (_, kind, unit) in CONCEPTS.items() if unit == "usd"]


def _fnxl(rng: random.Random) -> dict:
    chosen = [rng.choice(FNXL_TAGS) for _ in range(rng.randrange(2, 5))]
    questions = []
    for tag in chosen:
        amount = f"{rng.randrange(1, 999)}.{rng.randrange(10)}"
        sentence = f"{CONCEPTS[tag][0].capitalize()} was ${amount} million for the year."
        questions.append(f"What is the best us gaap tag for entity \"{amount}\" in sentence: \"{sentence}\"?\n")
    return {"context": "You are XBRL expert. Choose the best XBRL US GAAP tag for each highlighted entity in the "
            "sentences below. Provide only the US GAAP tags, comma-separated, in the order of the sentences and "
            "highlighted entity. Provide nothing else\n" + ", ".join(FNXL_TAGS) + ".\n" + "".join(questions),
            "target": ",".join(chosen)}


GENERATORS: dict[str, Callable[[random.Random], dict]] = {
    "formula": _formula, "xbrl_term": _term, "financebench": _financebench, "fnxl": _fnxl}
