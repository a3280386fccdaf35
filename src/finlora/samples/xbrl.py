"""Offline XBRL sample: small, valid XBRL instance documents of fictitious companies over several
fiscal years, and extraction questions over them, deterministic by seed.

Figures are consistent (gross profit = revenue - cost of revenue, assets = liabilities + equity,
EPS = net income / shares); each filing reports a subset of the concepts, prior-year comparatives,
segment breakdowns (dimensional contexts) and a text block, as real 10-K instances do.
"""

from __future__ import annotations

import datetime as dt
import random
import xml.etree.ElementTree as ET

from finlora.xbrl import XBRLI, XBRLDI

US_GAAP = "http://fasb.org/us-gaap/2023"
NAMESPACES = {
    "xbrli": XBRLI, "us-gaap": US_GAAP, "dei": "http://xbrl.sec.gov/dei/2023", "xbrldi": XBRLDI,
    "iso4217": "http://www.xbrl.org/2003/iso4217", "link": "http://www.xbrl.org/2003/linkbase",
    "xlink": "http://www.w3.org/1999/xlink",
}
YEARS = range(2019, 2024)
COMPANIES = [  # name, ticker, fiscal year end (month, day), revenue scale in $ millions
    ("Northwind Metals", "nwm", (12, 31), 2400), ("Aster Biotech", "astb", (6, 30), 900),
    ("Kestrel Airlines", "kstl", (12, 31), 7800), ("Corvid Software", "crvd", (9, 30), 3100),
    ("Halcyon Foods", "hlcn", (3, 31), 5200), ("Meridian Bank", "mrdb", (12, 31), 1700),
]
TEXT_BLOCK = ("IncomeTaxDisclosureTextBlock",
              "Income Taxes. The components of income before income taxes, the reconciliation of the "
              "statutory federal rate to the effective tax rate, deferred tax assets and liabilities, "
              "and unrecognized tax benefits are presented in the tables below.")
# us-gaap element -> (description used in questions, period kind, unit)
CONCEPTS = {
    "Revenues": ("total revenue", "duration", "usd"),
    "CostOfRevenue": ("cost of revenue", "duration", "usd"),
    "GrossProfit": ("gross profit", "duration", "usd"),
    "ResearchAndDevelopmentExpense": ("research and development expense", "duration", "usd"),
    "SellingGeneralAndAdministrativeExpense": ("selling, general and administrative expense", "duration", "usd"),
    "OperatingIncomeLoss": ("operating income", "duration", "usd"),
    "InterestExpense": ("interest expense", "duration", "usd"),
    "IncomeTaxExpenseBenefit": ("income tax expense", "duration", "usd"),
    "NetIncomeLoss": ("net income", "duration", "usd"),
    "EarningsPerShareBasic": ("basic earnings per share", "duration", "usdPerShare"),
    "EarningsPerShareDiluted": ("diluted earnings per share", "duration", "usdPerShare"),
    "WeightedAverageNumberOfSharesOutstandingBasic": ("weighted average basic shares outstanding", "duration", "shares"),
    "WeightedAverageNumberOfDilutedSharesOutstanding": ("weighted average diluted shares outstanding", "duration", "shares"),
    "DepreciationDepletionAndAmortization": ("depreciation and amortization", "duration", "usd"),
    "ShareBasedCompensation": ("stock-based compensation", "duration", "usd"),
    "NetCashProvidedByUsedInOperatingActivities": ("net cash from operating activities", "duration", "usd"),
    "PaymentsToAcquirePropertyPlantAndEquipment": ("capital expenditures", "duration", "usd"),
    "PaymentsOfDividends": ("dividends paid", "duration", "usd"),
    "PaymentsForRepurchaseOfCommonStock": ("share repurchases", "duration", "usd"),
    "CashAndCashEquivalentsAtCarryingValue": ("cash and cash equivalents", "instant", "usd"),
    "AccountsReceivableNetCurrent": ("accounts receivable", "instant", "usd"),
    "InventoryNet": ("inventory", "instant", "usd"),
    "AssetsCurrent": ("total current assets", "instant", "usd"),
    "PropertyPlantAndEquipmentNet": ("net property, plant and equipment", "instant", "usd"),
    "Goodwill": ("goodwill", "instant", "usd"),
    "Assets": ("total assets", "instant", "usd"),
    "AccountsPayableCurrent": ("accounts payable", "instant", "usd"),
    "LiabilitiesCurrent": ("total current liabilities", "instant", "usd"),
    "LongTermDebtNoncurrent": ("long-term debt", "instant", "usd"),
    "Liabilities": ("total liabilities", "instant", "usd"),
    "StockholdersEquity": ("total stockholders' equity", "instant", "usd"),
    "LiabilitiesAndStockholdersEquity": ("total liabilities and stockholders' equity", "instant", "usd"),
    "RetainedEarningsAccumulatedDeficit": ("retained earnings", "instant", "usd"),
    "CommonStockSharesOutstanding": ("common shares outstanding", "instant", "shares"),
}
CONCEPTS_PER_FILING = 8  # of 34; a fiscal year's prompt holds up to 8 facts and a text block
QUESTIONS_PER_PROMPT = 4  # questions asked of one filing's fiscal year (FinLoRA's development share: 2-6 a filing)
SEGMENTS = ("ProductMember", "ServiceMember")  # us-gaap members of StatementBusinessSegmentsAxis


def _figures(rng: random.Random, scale: int) -> dict[str, float]:
    """One fiscal year's statements, in dollars (shares in shares), internally consistent."""
    m = 1_000_000
    revenue = rng.uniform(0.7, 1.3) * scale * m
    cost = revenue * rng.uniform(0.35, 0.65)
    rd, sga = revenue * rng.uniform(0.03, 0.15), revenue * rng.uniform(0.08, 0.2)
    operating = revenue - cost - rd - sga
    interest = revenue * rng.uniform(0.005, 0.02)
    tax = max(0.0, (operating - interest) * rng.uniform(0.15, 0.25))
    net = operating - interest - tax
    shares = round(scale * rng.uniform(0.08, 0.3)) * m
    cash, receivables, inventory = (revenue * rng.uniform(0.05, 0.3) for _ in range(3))
    current = cash + receivables + inventory + revenue * 0.02
    ppe, goodwill = revenue * rng.uniform(0.2, 0.8), revenue * rng.uniform(0.05, 0.4)
    assets = current + ppe + goodwill + revenue * 0.05
    payables = cost * rng.uniform(0.1, 0.25)
    current_liabilities = payables + revenue * 0.04
    debt = revenue * rng.uniform(0.1, 0.6)
    liabilities = current_liabilities + debt + revenue * 0.03
    figures = {
        "Revenues": revenue, "CostOfRevenue": cost, "GrossProfit": revenue - cost,
        "ResearchAndDevelopmentExpense": rd, "SellingGeneralAndAdministrativeExpense": sga,
        "OperatingIncomeLoss": operating, "InterestExpense": interest, "IncomeTaxExpenseBenefit": tax,
        "NetIncomeLoss": net, "WeightedAverageNumberOfSharesOutstandingBasic": shares,
        "WeightedAverageNumberOfDilutedSharesOutstanding": shares * 1.01,
        "DepreciationDepletionAndAmortization": ppe * 0.1, "ShareBasedCompensation": revenue * 0.01,
        "NetCashProvidedByUsedInOperatingActivities": net * 1.2 + ppe * 0.1,
        "PaymentsToAcquirePropertyPlantAndEquipment": ppe * 0.12, "PaymentsOfDividends": max(0.0, net) * 0.3,
        "PaymentsForRepurchaseOfCommonStock": max(0.0, net) * 0.2, "CashAndCashEquivalentsAtCarryingValue": cash,
        "AccountsReceivableNetCurrent": receivables, "InventoryNet": inventory, "AssetsCurrent": current,
        "PropertyPlantAndEquipmentNet": ppe, "Goodwill": goodwill, "Assets": assets,
        "AccountsPayableCurrent": payables, "LiabilitiesCurrent": current_liabilities,
        "LongTermDebtNoncurrent": debt, "Liabilities": liabilities, "StockholdersEquity": assets - liabilities,
        "LiabilitiesAndStockholdersEquity": assets, "RetainedEarningsAccumulatedDeficit": (assets - liabilities) * 0.6,
        "CommonStockSharesOutstanding": shares * 0.98,
    }
    figures["EarningsPerShareBasic"] = net / shares
    figures["EarningsPerShareDiluted"] = net / (shares * 1.01)
    return figures


def _as_filed(concept: str, value: float) -> tuple[str, str]:
    """(text, decimals): dollars rounded to millions, shares to thousands, EPS to cents."""
    unit = CONCEPTS[concept][2]
    if unit == "usdPerShare":
        return f"{value:.2f}", "2"
    step, decimals = (1000, "-3") if unit == "shares" else (1_000_000, "-6")
    return str(round(value / step) * step), decimals


def _fiscal_year(year: int, month_day: tuple[int, int]) -> tuple[dt.date, dt.date]:
    end = dt.date(year, *month_day)
    return end.replace(year=year - 1) + dt.timedelta(days=1), end


class _Document:
    """Builds one instance document with ElementTree."""

    def __init__(self, cik: str, schema: str):
        for prefix, uri in NAMESPACES.items():
            ET.register_namespace(prefix, uri)
        self.cik = cik
        self.root = ET.Element(f"{{{XBRLI}}}xbrl")
        ET.SubElement(self.root, f"{{{NAMESPACES['link']}}}schemaRef", {
            f"{{{NAMESPACES['xlink']}}}type": "simple", f"{{{NAMESPACES['xlink']}}}href": schema})
        self.contexts: dict[tuple, str] = {}

    def context(self, start: dt.date | None, end: dt.date, member: str | None = None) -> str:
        key = (start, end, member)
        if key not in self.contexts:
            self.contexts[key] = context_id = f"c-{len(self.contexts) + 1}"
            element = ET.SubElement(self.root, f"{{{XBRLI}}}context", {"id": context_id})
            entity = ET.SubElement(element, f"{{{XBRLI}}}entity")
            ET.SubElement(entity, f"{{{XBRLI}}}identifier", {"scheme": "http://www.sec.gov/CIK"}).text = self.cik
            if member:
                segment = ET.SubElement(entity, f"{{{XBRLI}}}segment")
                ET.SubElement(segment, f"{{{XBRLDI}}}explicitMember", {
                    "dimension": "us-gaap:StatementBusinessSegmentsAxis"}).text = f"us-gaap:{member}"
            period = ET.SubElement(element, f"{{{XBRLI}}}period")
            if start is None:
                ET.SubElement(period, f"{{{XBRLI}}}instant").text = end.isoformat()
            else:
                ET.SubElement(period, f"{{{XBRLI}}}startDate").text = start.isoformat()
                ET.SubElement(period, f"{{{XBRLI}}}endDate").text = end.isoformat()
        return self.contexts[key]

    def units(self) -> None:
        for unit_id, measure in (("usd", "iso4217:USD"), ("shares", "xbrli:shares")):
            unit = ET.SubElement(self.root, f"{{{XBRLI}}}unit", {"id": unit_id})
            ET.SubElement(unit, f"{{{XBRLI}}}measure").text = measure
        divide = ET.SubElement(ET.SubElement(self.root, f"{{{XBRLI}}}unit", {"id": "usdPerShare"}),
                               f"{{{XBRLI}}}divide")
        ET.SubElement(ET.SubElement(divide, f"{{{XBRLI}}}unitNumerator"), f"{{{XBRLI}}}measure").text = "iso4217:USD"
        ET.SubElement(ET.SubElement(divide, f"{{{XBRLI}}}unitDenominator"),
                      f"{{{XBRLI}}}measure").text = "xbrli:shares"

    def fact(self, namespace: str, name: str, context: str, text: str, unit: str | None = None,
             decimals: str | None = None) -> None:
        attributes = {"contextRef": context, **({"unitRef": unit, "decimals": decimals} if unit else {})}
        ET.SubElement(self.root, f"{{{namespace}}}{name}", attributes).text = text

    def to_bytes(self) -> bytes:
        order = {f"{{{NAMESPACES['link']}}}schemaRef": 0, f"{{{XBRLI}}}context": 1, f"{{{XBRLI}}}unit": 2}
        self.root[:] = sorted(self.root, key=lambda element: order.get(element.tag, 3))  # stable
        ET.indent(self.root)
        return ET.tostring(self.root, encoding="utf-8", xml_declaration=True) + b"\n"


def filing(company: tuple, year: int, figures: dict[int, dict[str, float]], concepts: list[str]) -> bytes:
    """The 10-K instance of `company` for fiscal `year`, with prior-year comparatives."""
    name, ticker, month_day, _ = company
    start, end = _fiscal_year(year, month_day)
    doc = _Document(cik=f"{sum(map(ord, ticker)) * 7919:010d}", schema=f"{ticker}-{end:%Y%m%d}.xsd")
    doc.fact(NAMESPACES["dei"], "EntityRegistrantName", doc.context(start, end), name)
    doc.fact(NAMESPACES["dei"], "DocumentFiscalYearFocus", doc.context(start, end), str(year))
    for concept in concepts:
        kind = CONCEPTS[concept][1]
        for fiscal in (year, year - 1):
            if fiscal not in figures or (kind == "instant" and fiscal != year):
                continue
            fiscal_start, fiscal_end = _fiscal_year(fiscal, month_day)
            context = doc.context(fiscal_start if kind == "duration" else None, fiscal_end)
            text, decimals = _as_filed(concept, figures[fiscal][concept])
            doc.fact(US_GAAP, concept, context, text, CONCEPTS[concept][2], decimals)
    for share, member in zip((0.6, 0.4), SEGMENTS):  # segment revenue: dimensional, never in prompts
        text, decimals = _as_filed("Revenues", figures[year]["Revenues"] * share)
        doc.fact(US_GAAP, "Revenues", doc.context(start, end, member), text, "usd", decimals)
    doc.fact(US_GAAP, TEXT_BLOCK[0], doc.context(start, end), TEXT_BLOCK[1])
    doc.units()
    return doc.to_bytes()


def filing_name(company: tuple, year: int) -> str:
    return f"{company[1]}-{_fiscal_year(year, company[2])[1]:%Y%m%d}.xml"


# A ratio's name -> (numerator, denominator, in percent): XBRL formula questions
RATIOS = {
    "Gross Margin": ("GrossProfit", "Revenues", True),
    "Net Profit Margin": ("NetIncomeLoss", "Revenues", True),
    "Operating Margin": ("OperatingIncomeLoss", "Revenues", True),
    "Research and Development Intensity": ("ResearchAndDevelopmentExpense", "Revenues", True),
    "Cash Flow Margin": ("NetCashProvidedByUsedInOperatingActivities", "Revenues", True),
    "Capital Expenditure Ratio": ("PaymentsToAcquirePropertyPlantAndEquipment", "Revenues", True),
    "Dividend Payout Ratio": ("PaymentsOfDividends", "NetIncomeLoss", True),
    "Return on Assets": ("NetIncomeLoss", "Assets", True),
    "Current Ratio": ("AssetsCurrent", "LiabilitiesCurrent", False),
    "Cash Ratio": ("CashAndCashEquivalentsAtCarryingValue", "LiabilitiesCurrent", False),
    "Debt to Equity Ratio": ("Liabilities", "StockholdersEquity", False),
}


def ratio_questions(facts: dict) -> dict:
    """(company, ratio, fiscal year) -> (filing, ratio, its formula with the values as filed), for
    ratios whose two figures one filing reports for that year."""
    questions = {}
    for (company, concept, fiscal), (name, value) in facts.items():
        for ratio, (numerator, denominator, percent) in RATIOS.items():
            other = facts.get((company, denominator, fiscal))
            if concept == numerator and other and other[0] == name:
                formula = f"({value} / {other[1]}) * 100" if percent else f"{value} / {other[1]}"
                questions[(company, ratio, fiscal)] = (name, ratio, formula)
    return questions


def _by_prompt(questions: dict, rng: random.Random) -> list[tuple]:
    """Question keys, a few at a time from one filing's fiscal year (one prompt body), bodies in
    random order: FinLoRA asks several questions of each filing it puts in a prompt."""
    bodies: dict[tuple, list[tuple]] = {}
    for key in sorted(questions):
        bodies.setdefault((questions[key][0], key[2]), []).append(key)
    order = sorted(bodies)
    rng.shuffle(order)
    keys = []
    for body in order:
        rng.shuffle(bodies[body])
        keys += bodies[body][:QUESTIONS_PER_PROMPT]
    return keys


def generate(task: str, n_train: int, n_test: int, seed: int) -> dict:
    """Questions of `task` (xbrl_tags | xbrl_value | xbrl_formula) and the filings they ask about.

    Both tasks see the same filings for a seed; no question appears in both train and test.
    """
    rng = random.Random(f"xbrl-{seed}")
    filings, facts = {}, {}
    for company in COMPANIES:
        figures = {year: _figures(rng, company[3]) for year in range(YEARS.start - 1, YEARS.stop)}
        for year in YEARS:
            concepts = sorted(rng.sample(list(CONCEPTS), CONCEPTS_PER_FILING), key=list(CONCEPTS).index)
            name = filing_name(company, year)
            filings[name] = filing(company, year, figures, concepts)
            for concept in concepts:
                years = (year, year - 1) if CONCEPTS[concept][1] == "duration" else (year,)
                for fiscal in years:  # one question per (company, concept, year), from its newest filing
                    facts[(company[0], concept, fiscal)] = (name, _as_filed(concept, figures[fiscal][concept])[0])
    questions = ratio_questions(facts) if task == "xbrl_formula" else {
        key: (name, CONCEPTS[key[1]][0], f"us-gaap:{key[1]}" if task == "xbrl_tags" else value)
        for key, (name, value) in facts.items()}
    keys = _by_prompt(questions, random.Random(f"{task}-{seed}"))
    if len(keys) < n_train + n_test:
        raise ValueError(f"the XBRL sample has {len(keys)} questions, fewer than {n_train + n_test} asked for")
    rows = [{"filing": questions[key][0], "company": key[0], "concept": questions[key][1], "fiscal_year": key[2],
             "answer": questions[key][2]} for key in keys[:n_train + n_test]]
    used = {row["filing"] for row in rows}
    return {"splits": {"train": rows[:n_train], "test": rows[n_train:]},
            "filings": {name: text for name, text in filings.items() if name in used}}
