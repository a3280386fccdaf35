"""The offline sample data: deterministic, labelled examples for every task, written by this
project (no public data copied), in each data set's own raw schema so that the same
preprocessing reads them as it reads Hub data.

Sentences are composed from parts (company, metric, movement, period, reason) so that the label
follows from the wording the way it does in real financial news, with enough variety that a
model has to read the movement and its direction rather than memorise sentences. As in the real
sets, some news is hedged (an outlook, not a result), some is mixed (a concession, then the clause
that carries the label), and neutral news often quotes figures with no direction; NER names can
be read as more than one type (a company named after its founders, a city with a first name's
spelling), so the sentence, not the name, tells the type.
"""

from __future__ import annotations

import random
from typing import Callable

from finlora.prompts import headline_instruction, ner_instruction
from finlora.tasks import NER_LABELS, NWGI_LEVELS

COMPANIES = [
    "Northwind Metals", "Aster Biotech", "Kestrel Airlines", "Bluefin Shipping", "Corvid Software",
    "Halcyon Foods", "Meridian Bank", "Pinecrest Energy", "Quarry Lane Retail", "Solano Motors",
    "Tidewater Insurance", "Umbra Semiconductors", "Vantage Telecom", "Willow Pharma", "Yarrow Mining",
    "Zephyr Logistics", "Granite Peak Capital", "Harbor Light Utilities", "Ironleaf Paper", "Juniper Media",
]
TICKERS = ["NWM", "ASTB", "KSTL", "BLFN", "CRVD", "HLCN", "MRDB", "PNCE", "QLRT", "SLNM",
           "TDWI", "UMBR", "VNTG", "WLPH", "YRRW", "ZPHL", "GRPK", "HLUT", "IRLF", "JNPR"]
PERIODS = ["the first quarter", "the second quarter", "the third quarter", "the fourth quarter",
           "the first half of the year", "the full year", "the nine-month period"]
GOOD_METRICS = ["net sales", "operating profit", "net profit", "revenue", "order intake",
                "earnings per share", "gross margin", "operating cash flow"]
BAD_METRICS = ["operating loss", "net debt", "costs", "customer churn", "impairment charges"]
REASONS_UP = ["strong demand in Asia", "higher average prices", "cost savings", "new contracts",
              "a successful product launch", "the integration of an acquisition"]
REASONS_DOWN = ["weak demand in Europe", "lower prices", "a plant shutdown", "currency headwinds",
                "the loss of a major customer", "restructuring costs"]
NEUTRAL_SENTENCES = [
    "{c} will publish its interim report for {p} on {d}.",
    "{c} has appointed a new chief financial officer, effective {d}.",
    "The annual general meeting of {c} will be held in {city} on {d}.",
    "{c} operates production facilities in {city} and employs about {n:,} people.",
    "{c} said its board will review the dividend proposal at its meeting on {d}.",
    "{c} moved its headquarters to {city} as announced earlier.",
    "The shares of {c} are listed on the main market under the ticker {t}.",
    "{c} signed a lease for new office space in {city}, with no financial impact disclosed.",
    "{c}'s {m} totalled EUR {n:,} thousand in {p}.",
    "In {p}, {c} reported {m} of EUR {n:,} thousand, in line with the same period a year earlier.",
    "{c} expects its {m} for the full year to be roughly at the previous year's level.",
    "{c}'s {m} was EUR {n:,} thousand in {p}, compared with EUR {n2:,} thousand a year earlier.",
]
CITIES = ["Helsinki", "Frankfurt", "Singapore", "Toronto", "Chicago", "Oslo", "Madrid", "Sydney",
          "Dublin", "Osaka", "Lyon", "Denver", "Zurich", "Austin", "Warsaw"]
DATES = ["March 3", "April 28", "May 15", "June 30", "July 21", "August 9", "October 25", "November 12"]
# Movement phrases by strength; NWGI's seven levels use all three strengths.
RISE = {"strong": ["soared {x}%", "surged {x}%", "jumped {x}%"],
        "moderate": ["rose {x}%", "increased {x}%", "grew {x}%"],
        "mild": ["edged up {x}%", "inched up {x}%", "was up a slight {x}%"]}
FALL = {"strong": ["plunged {x}%", "collapsed {x}%", "tumbled {x}%"],
        "moderate": ["fell {x}%", "decreased {x}%", "declined {x}%"],
        "mild": ["slipped {x}%", "eased {x}%", "was down a slight {x}%"]}
STRENGTH_RANGE = {"strong": (25, 60), "moderate": (6, 20), "mild": (1, 3)}


def _move(rng: random.Random, up: bool, strength: str) -> str:
    low, high = STRENGTH_RANGE[strength]
    phrase = rng.choice((RISE if up else FALL)[strength])
    return phrase.format(x=rng.randint(low, high))


def _fill(rng: random.Random, template: str) -> str:
    n = rng.randint(2, 90) * 100
    return template.format(c=rng.choice(COMPANIES), p=rng.choice(PERIODS), d=rng.choice(DATES),
                           city=rng.choice(CITIES), n=n, n2=n + rng.choice([-1, 1]) * rng.randint(1, 9) * 10,
                           t=rng.choice(TICKERS), m=rng.choice(GOOD_METRICS))


# Outlooks: the direction is expected, not reported ({v} takes "rise" or "fall").
HEDGES = ["{c} expects {m} to {v} in {p}", "Analysts say {m} at {c} could {v} in {p}",
          "{c} said {m} is likely to {v} somewhat in {p}"]


def news_sentence(rng: random.Random, label: str, strength: str = "moderate") -> str:
    """A news sentence whose sentiment is `label`; positive news is a good metric rising or a
    bad metric falling, and the other way round for negative news. A fifth of them are outlooks,
    a fifth mixed: a concession the other way, then the clause that carries the label."""
    if label == "neutral":
        return _fill(rng, rng.choice(NEUTRAL_SENTENCES))
    company, period = rng.choice(COMPANIES), rng.choice(PERIODS)
    good_metric = rng.random() < 0.75
    metric = rng.choice(GOOD_METRICS if good_metric else BAD_METRICS)
    up = (label == "positive") == good_metric
    reason = rng.choice(REASONS_UP if label == "positive" else REASONS_DOWN)
    other_reason = rng.choice(REASONS_DOWN if label == "positive" else REASONS_UP)
    form = rng.random()
    if form < 0.2:
        verb = "rise" if up else "fall"
        return rng.choice(HEDGES).format(c=company, m=metric, v=verb, p=period) + f", citing {reason}."
    if form < 0.4:
        return (f"Despite {other_reason}, {company}'s {metric} {_move(rng, up, strength)} in {period}."
                if rng.random() < 0.5 else
                f"{company} pointed to {other_reason}, but {metric} {_move(rng, up, strength)} in {period} on {reason}.")
    forms = [
        f"{company}'s {metric} {_move(rng, up, strength)} in {period}, driven by {reason}.",
        f"In {period}, {metric} at {company} {_move(rng, up, strength)} due to {reason}.",
        f"{company} said {metric} {_move(rng, up, strength)} year on year in {period}, citing {reason}.",
    ]
    return rng.choice(forms)


def tweet(rng: random.Random, label: str) -> str:
    ticker = rng.choice(TICKERS)
    link = f"https://t.co/{''.join(rng.choices('abcdefghijkmnpqrstuvwxyz0123456789', k=8))}"
    if label == "neutral":
        options = [f"${ticker} to present at investor conference on {rng.choice(DATES)}",
                   f"${ticker} declares regular quarterly dividend of ${rng.randint(5, 90) / 100:.2f}",
                   f"What to watch in ${ticker} earnings call this week {link}",
                   f"${ticker} initiated at neutral at {rng.choice(['Barclay Hill', 'Stone & Co', 'Redfern'])}",
                   f"${ticker} reports Q{rng.randint(1, 4)} results in line with estimates {link}"]
    elif label == "positive":
        options = [f"${ticker} shares {_move(rng, True, 'moderate')} after earnings beat {link}",
                   f"${ticker} upgraded to buy at {rng.choice(['Barclay Hill', 'Stone & Co', 'Redfern'])}, target raised",
                   f"${ticker} hits record high as {rng.choice(REASONS_UP)} lifts outlook",
                   f"${ticker} could break out here if {rng.choice(REASONS_UP)} holds up",
                   f"${ticker} beat despite {rng.choice(REASONS_DOWN)}, guidance raised {link}"]
    else:
        options = [f"${ticker} shares {_move(rng, False, 'moderate')} after guidance cut {link}",
                   f"${ticker} downgraded to sell, analysts flag {rng.choice(REASONS_DOWN)}",
                   f"${ticker} slides, citing {rng.choice(REASONS_DOWN)}",
                   f"${ticker} may struggle next quarter on {rng.choice(REASONS_DOWN)}",
                   f"${ticker} revenue up but margins squeezed, guidance cut {link}"]
    return rng.choice(options)


def _drawn(n: int, shares: dict[str, float], rng: random.Random) -> list:
    """`n` labels in the given shares (largest remainders; every label at least once where n
    allows), shuffled."""
    counts = {label: int(n * share) for label, share in shares.items()}
    if n >= len(shares):
        counts = {label: max(1, count) for label, count in counts.items()}
    by_remainder = sorted(shares, key=lambda label: n * shares[label] - int(n * shares[label]), reverse=True)
    for label in by_remainder[:max(0, n - sum(counts.values()))]:
        counts[label] += 1
    while sum(counts.values()) > n:  # the minimum of one pushed past n: take from the largest
        counts[max(counts, key=counts.get)] -= 1
    order = [label for label, count in counts.items() for _ in range(count)]
    rng.shuffle(order)
    return order


def _fpb_row(rng: random.Random, label: str) -> dict:
    return {"sentence": news_sentence(rng, label), "label": label}


def _fiqa_row(rng: random.Random, label: str) -> dict:
    post = rng.random() < 0.5
    text = tweet(rng, label) if post else news_sentence(rng, label)
    low, high = {"negative": (-0.95, -0.2), "neutral": (-0.05, 0.05), "positive": (0.2, 0.95)}[label]
    return {"sentence": text, "sentiment_score": round(rng.uniform(low, high), 3),
            "format": "post" if post else "headline"}


TFNS_IDS = {"negative": 0, "positive": 1, "neutral": 2}  # Bearish, Bullish, Neutral


def _tfns_row(rng: random.Random, label: str) -> dict:
    return {"text": tweet(rng, label), "label": TFNS_IDS[label]}


def _nwgi_row(rng: random.Random, level: str) -> dict:
    if level == "neutral":
        return {"news": news_sentence(rng, "neutral"), "label": level}
    strength, direction = level.split()
    strength = {"strong": "strong", "moderately": "moderate", "mildly": "mild"}[strength]
    return {"news": news_sentence(rng, direction, strength), "label": level}


HEADLINE_QUESTIONS = {
    "up": "Does the news headline talk about price going up?",
    "down": "Does the news headline talk about price going down?",
    "stable": "Does the news headline talk about price staying constant?",
}
HEADLINES = {
    "up": ["gold climbs ${x} as dollar weakens", "gold prices rose ${x} on Friday",
           "gold settled ${x} higher on safe-haven demand", "gold could rally toward ${y}, analysts say",
           "gold jumps to a two-week high on rate cut hopes", "gold extends gains for a third session"],
    "down": ["gold drops ${x} as yields rise", "gold prices fell ${x} on Tuesday",
             "gold settled ${x} lower after strong jobs data", "gold may slide below ${y}, strategists warn",
             "gold slumps to a one-month low as dollar firms", "gold extends losses for a third session"],
    "stable": ["gold steady near ${y} an ounce", "gold prices flat ahead of Fed minutes",
               "gold little changed at ${y}", "gold likely to hold near ${y} this week",
               "gold trades in a tight range around ${y}", "gold unchanged as traders await inflation data"],
}


def _headline_row(rng: random.Random, answer: str) -> dict:
    """A gold-price headline and a yes/no question about the direction it reports."""
    direction = rng.choice(list(HEADLINES))
    headline = rng.choice(HEADLINES[direction]).format(x=rng.randint(3, 40), y=rng.randint(1700, 2600))
    question = direction if answer == "yes" else rng.choice([q for q in HEADLINE_QUESTIONS if q != direction])
    return {"instruction": headline_instruction(HEADLINE_QUESTIONS[question]),
            "input": headline[0].upper() + headline[1:], "output": "Yes" if answer == "yes" else "No"}


PEOPLE = ["Maria Lindqvist", "James Okafor", "Chen Wei", "Laura Benedetti", "Rahul Mehta",
          "Sophie Marchand", "Daniel Kowalski", "Aiko Tanaka", "Omar Haddad", "Emily Carter",
          "Austin Hamilton", "Florence Jackson", "Lincoln Sydney", "Victoria Lyon"]  # names that are also places
# Organisations named after people or places, and places with people's names: the name alone
# does not tell the type, as in the real agreements' "Hamilton", "Jackson" or "Lincoln".
NER_ORGANIZATIONS = COMPANIES + ["Carter & Okafor", "Lindqvist Hamilton", "Jackson Mehta Partners", "Victoria"]
NER_LOCATIONS = CITIES + ["Hamilton", "Jackson", "Lincoln", "Florence", "Victoria", "Carter County"]
ROLES = ["chief executive", "finance director", "chairman", "head of treasury", "lead analyst"]


def _ner_row(rng: random.Random, label: str) -> dict:
    person = rng.choice(PEOPLE)
    while True:  # no name inside another of the sentence: "Jackson" is a place or part of "Florence Jackson"
        company, city = rng.choice(NER_ORGANIZATIONS), rng.choice(NER_LOCATIONS)
        names = (company, person, city)
        if not any(a in b for i, a in enumerate(names) for j, b in enumerate(names) if i != j):
            break
    role, date = rng.choice(ROLES), rng.choice(DATES)
    sentences = [
        f"{person}, {role} of {company}, said the expansion in {city} will be completed by {date}.",
        f"{company} signed a supply agreement in {city}, according to {person}.",
        f"The loan from {company} to its subsidiary in {city} was approved by {person} on {date}.",
        f"Under the agreement, {company} will lease the property in {city} to a tenant chosen by {person}.",
        f"{person} and {company} agreed on {date} to settle the claim filed in {city}.",
        f"Notices to {company} shall be sent to its office in {city}, attention: {person}.",
    ]
    sentence = rng.choice(sentences)
    entity = {"person": person, "organization": company, "location": city}[label]
    return {"instruction": ner_instruction(entity, NER_LABELS), "input": sentence, "output": label}


# Reviews by stars: what was liked or not, how strongly, and a last word that leans the same way;
# 2 and 4 stars mix a good point with a bad one, 3 stars weighs them evenly, as real reviews do.
VENUES = ["the bistro", "this bakery", "the hotel", "this noodle bar", "the dental office", "this garage",
          "the coffee shop", "this salon", "the taqueria", "the bookstore", "this gym", "the steakhouse"]
GOOD_POINTS = ["the staff were friendly", "the food was fresh", "prices were fair", "service was quick",
               "the room was spotless", "they fixed it the same day", "portions were generous", "parking was easy"]
BAD_POINTS = ["we waited forty minutes", "the order was wrong", "the bill had extra charges", "the place was dirty",
              "nobody answered the phone", "the food arrived cold", "the manager was rude", "it was overpriced"]
REVIEW_CLOSINGS = {
    "1": ["Never again.", "Avoid this place.", "A complete waste of money.", "Worst experience in years."],
    "2": ["Probably not coming back.", "Disappointing overall.", "I expected much more.", "Not worth it."],
    "3": ["It was okay.", "Average, nothing special.", "Hit and miss.", "Fine, if you are nearby."],
    "4": ["Would come back.", "Pretty good overall.", "Solid choice.", "Recommended, with small caveats."],
    "5": ["Absolutely loved it!", "Best in town, hands down.", "Five stars, no question.", "Can't wait to return!"],
}
STARS_NAME = {"1": "1 star", "2": "2 star", "3": "3 stars", "4": "4 stars", "5": "5 stars"}  # the Hub's names


def _yelp_row(rng: random.Random, stars: str) -> dict:
    good, bad = rng.sample(GOOD_POINTS, 2), rng.sample(BAD_POINTS, 2)
    venue = rng.choice(VENUES)
    body = {"1": f"We tried {venue}: {bad[0]} and {bad[1]}.",
            "2": f"At {venue} {good[0]}, but {bad[0]} and {bad[1]}.",
            "3": f"At {venue} {good[0]}, though {bad[0]}.",
            "4": f"At {venue} {good[0]} and {good[1]}, though {bad[0]}.",
            "5": f"We tried {venue}: {good[0]} and {good[1]}."}[stars]
    return {"text": f"{body} {rng.choice(REVIEW_CLOSINGS[stars])}", "label": STARS_NAME[stars]}


# Each task's label shares follow FinLoRA's real test files (the development share: FPB is mostly
# neutral, FiQA mostly positive, NER mostly persons, NWGI's extreme levels rare), so that always
# answering the majority label scores on the sample what it scores on real data. Headline: no
# real share was available; balanced.
LABEL_SHARES = {
    "fpb": {"negative": 0.09, "neutral": 0.65, "positive": 0.26},
    "fiqa": {"negative": 0.24, "neutral": 0.09, "positive": 0.67},
    "tfns": {"negative": 0.14, "neutral": 0.66, "positive": 0.20},  # true labels (the release swaps two)
    "nwgi": dict(zip(NWGI_LEVELS, (0.02, 0.18, 0.13, 0.12, 0.16, 0.38, 0.01))),
    "headline": {"yes": 0.5, "no": 0.5},
    "ner": {"location": 0.12, "organization": 0.20, "person": 0.68},
    "yelp": {stars: 0.2 for stars in "12345"},  # Yelp review full is balanced: 130,000 reviews a star
}
GENERATORS: dict[str, tuple[Callable[[random.Random, str], dict], str]] = {
    # task: (row maker, field whose value must be unique)
    "fpb": (_fpb_row, "sentence"),
    "fiqa": (_fiqa_row, "sentence"),
    "tfns": (_tfns_row, "text"),
    "nwgi": (_nwgi_row, "news"),
    "headline": (_headline_row, "input"),
    "ner": (_ner_row, "input"),
    "yelp": (_yelp_row, "text"),
}


def labelled_rows(task: str, n_train: int, n_test: int, seed: int) -> dict[str, list[dict]]:
    """Rows of a classification task, its labels in their real shares in each split."""
    make_row, unique_field = GENERATORS[task]
    rng = random.Random(f"{task}-{seed}")
    rows, seen = [], set()
    labels = _drawn(n_train, LABEL_SHARES[task], rng) + _drawn(n_test, LABEL_SHARES[task], rng)
    for label in labels:
        for _ in range(50):
            row = make_row(rng, label)
            key = (row[unique_field], row.get("instruction"))
            if key not in seen:
                break
        seen.add(key)
        rows.append(row)
    return {"train": rows[:n_train], "test": rows[n_train:]}

