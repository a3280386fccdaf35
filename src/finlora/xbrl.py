"""XBRL instance documents: contexts, units and facts, read with a real XML parser, and the
extraction prompts built from them.

Only what the extraction prompts need: the non-dimensional us-gaap facts of one fiscal year,
each rendered back as one XML element per line.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from finlora.errors import FinloraError
from finlora.prompts import xbrl_context, xbrl_question

if TYPE_CHECKING:
    from finlora.tasks import Task

XBRLI = "http://www.xbrl.org/2003/instance"
XBRLDI = "http://xbrl.org/2006/xbrldi"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
US_GAAP_PREFIX = "http://fasb.org/us-gaap/"  # followed by the taxonomy year
MIN_ANNUAL_DAYS = 300  # a duration this long is a fiscal year (52/53-week years included)


@dataclass(frozen=True)
class Context:
    id: str
    entity: str
    start: dt.date | None
    end: dt.date  # the instant, for instant contexts
    instant: bool
    dimensional: bool  # has a segment/scenario member: a breakdown, not the company total


@dataclass(frozen=True)
class Fact:
    concept: str  # local name in the us-gaap taxonomy, e.g. "Revenues"
    context: str
    unit: str | None
    decimals: str | None
    value: str


@dataclass(frozen=True)
class Filing:
    path: str
    contexts: dict[str, Context]
    facts: list[Fact]

    def fiscal_year_end(self, year: int) -> dt.date:
        """The end date of the company-wide annual period that ends in `year`."""
        ends = {c.end for c in self.contexts.values()
                if not c.instant and not c.dimensional and c.end.year == year
                and (c.end - c.start).days >= MIN_ANNUAL_DAYS}
        if not ends:
            raise FinloraError(f"{self.path}: no annual context ends in fiscal year {year}",
                               hint="the question's fiscal_year must match a year the filing reports")
        return max(ends)

    def facts_for_year(self, year: int) -> list[Fact]:
        """us-gaap facts of the fiscal year: its annual durations and the instants at its end."""
        end = self.fiscal_year_end(year)
        matching = {c.id for c in self.contexts.values() if not c.dimensional and c.end == end
                    and (c.instant or (c.end - c.start).days >= MIN_ANNUAL_DAYS)}
        return [fact for fact in self.facts if fact.context in matching]


def filing_path(folder: Path, name: str) -> Path | None:
    """The file a question's `filing` names in `folder`; None unless it is a plain file name there."""
    path = folder / name
    return path if name and Path(name).name == name and path.is_file() else None


def parse_filing(path: str | Path) -> Filing:
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        line, column = error.position
        raise FinloraError(f"{path}:{line}: not well-formed XML (column {column}: {error.msg})",
                           hint="an XBRL instance document must be valid XML") from None
    except OSError as error:
        raise FinloraError(f"{path}: cannot read ({error.strerror})") from None
    if root.tag != f"{{{XBRLI}}}xbrl":
        raise FinloraError(f"{path}: the root element is {root.tag}, not xbrli:xbrl",
                           hint="pass an XBRL instance document (not inline XBRL HTML or a schema)")
    contexts = {c.id: c for c in (_context(path, element) for element in root.iter(f"{{{XBRLI}}}context"))}
    facts = []
    for element in root:
        if not element.tag.startswith(f"{{{US_GAAP_PREFIX}") or element.get(XSI_NIL) == "true":
            continue
        context = element.get("contextRef")
        if context not in contexts:
            raise FinloraError(f"{path}: fact {_local(element.tag)} refers to context {context!r}, "
                               "which the filing does not define")
        facts.append(Fact(_local(element.tag), context, element.get("unitRef"), element.get("decimals"),
                          "".join(element.itertext()).strip()))
    return Filing(str(path), contexts, facts)


def fact_line(fact: Fact, max_text_chars: int) -> str:
    """One fact as one line of XML; long text values (text blocks) cut to `max_text_chars`."""
    value = fact.value if fact.unit else fact.value[:max_text_chars]
    value = " ".join(value.split())
    attributes = f" contextRef={quoteattr(fact.context)}"
    if fact.unit:
        attributes += f" unitRef={quoteattr(fact.unit)}"
    if fact.decimals is not None:
        attributes += f" decimals={quoteattr(fact.decimals)}"
    return f"<us-gaap:{fact.concept}{attributes}>{escape(value)}</us-gaap:{fact.concept}>"


def _context(path: Path, element: ET.Element) -> Context:
    context_id = element.get("id")
    identifier = element.find(f"{{{XBRLI}}}entity/{{{XBRLI}}}identifier")
    period = element.find(f"{{{XBRLI}}}period")
    if not context_id or identifier is None or period is None:
        raise FinloraError(f"{path}: context {context_id!r} lacks an id, entity identifier or period")
    dimensional = element.find(f".//{{{XBRLDI}}}explicitMember") is not None or \
        element.find(f".//{{{XBRLDI}}}typedMember") is not None
    instant = period.findtext(f"{{{XBRLI}}}instant")
    try:
        if instant:
            day = dt.date.fromisoformat(instant.strip())
            return Context(context_id, identifier.text or "", None, day, True, dimensional)
        start = dt.date.fromisoformat(period.findtext(f"{{{XBRLI}}}startDate", "").strip())
        end = dt.date.fromisoformat(period.findtext(f"{{{XBRLI}}}endDate", "").strip())
    except ValueError:
        raise FinloraError(f"{path}: context {context_id!r} has no valid instant or startDate/endDate",
                           hint="dates are YYYY-MM-DD") from None
    return Context(context_id, identifier.text or "", start, end, False, dimensional)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --- extraction prompts ------------------------------------------------------------------------

class Filings:
    """Parsed filings of a folder, each read once."""

    def __init__(self, folder: Path | None):
        self.folder, self.parsed = folder, {}

    def get(self, name: str) -> Filing:
        if name not in self.parsed:
            path = filing_path(self.folder or Path("."), name)
            if path is None:
                raise FinloraError(f"filing {name!r} is not in {self.folder}/")
            self.parsed[name] = parse_filing(path)
        return self.parsed[name]


def xbrl_record(task: Task, row: dict, filings: Filings, text_value_chars: int) -> dict:
    task.check_fields(row)
    try:
        year = int(row["fiscal_year"])
    except (TypeError, ValueError):
        raise FinloraError(f"fiscal_year {row['fiscal_year']!r} is not a year") from None
    facts = filings.get(str(row["filing"])).facts_for_year(year)
    question = xbrl_question(task.answer, row["company"], row["concept"], year)
    lines = [fact_line(fact, text_value_chars) for fact in facts]
    return {"context": xbrl_context(task.answer, lines, question), "target": str(row["answer"]).strip()}
