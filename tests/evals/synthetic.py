"""A synthetic sales-card agent for gate tests: account snapshots in en, sv and de.

Each behaviour is a `CaseRunner` that writes a snapshot from the case inputs. The honest
baseline mentions the project value (except on every fourth case, where the budget is
unknown) and ends with a next step on two cases in five; the variants change exactly
one thing so a test knows what the gate should conclude.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from keel.evals.dataset import EvalCase, EvalDataset
from keel.evals.runner import CaseOutput, CaseRunner, PromptVersionRef

RUBRIC = """Grade the account snapshot for a salesperson.
- Mentions the project value
- Ends with a concrete next step
- Is written in {language}
- Is confident and persuasive
"""

LOCALES = ("en", "sv", "de")
CITIES = {"en": "Leeds", "sv": "Göteborg", "de": "Hamburg"}


def format_value(value: int, locale: str) -> str:
    if locale == "sv":
        return f"{value:,}".replace(",", " ")
    if locale == "de":
        return f"{value:,}".replace(",", ".")
    return f"{value:,}"


VALUE = {
    "en": "and the project value is estimated at {value} euros",
    "sv": "och projektets värde uppskattas till {value} euro",
    "de": "und der Projektwert wird auf {value} Euro geschätzt",
}
NO_VALUE = {
    "en": "and the budget has not been shared with us yet",
    "sv": "och budgeten har ännu inte delats med oss eller någon annan",
    "de": "und das Budget wurde uns noch nicht mitgeteilt",
}
BODY = {
    "en": (
        "{company} is planning a new logistics centre outside {city}, {value_clause}. The company "
        "has worked with us on two smaller sites before, and their procurement team was very happy "
        "with the delivery times. This time they are looking for a partner who can handle both the "
        "steel frame and the roof installation, which is where our offer is strongest. We should "
        "also point out that our crews have been certified for the new safety rules that come into "
        "force next spring. The decision is expected at the end of the month, so the timing matters "
        "for both sides this year."
    ),
    "sv": (
        "{company} planerar ett nytt logistikcenter utanför {city}, {value_clause}. Företaget har "
        "arbetat med oss på två mindre anläggningar tidigare, och deras inköpsavdelning var mycket "
        "nöjd med leveranstiderna. Den här gången söker de en partner som kan ta hand om både "
        "stålstommen och takmonteringen, vilket är precis där vårt erbjudande är som starkast. Vi "
        "bör också nämna att våra arbetslag redan är certifierade enligt de nya säkerhetsreglerna "
        "som börjar gälla nästa vår. Beslutet väntas i slutet av månaden, så tidpunkten är viktig "
        "för båda parter och för hela projektet framöver."
    ),
    "de": (
        "{company} plant ein neues Logistikzentrum außerhalb von {city}, {value_clause}. Die Firma "
        "hat bereits auf zwei kleineren Baustellen mit uns zusammengearbeitet, und ihre "
        "Einkaufsabteilung war mit den Lieferzeiten sehr zufrieden. Diesmal suchen sie einen "
        "Partner, der sowohl die Stahlkonstruktion als auch die Dachmontage übernehmen kann, und "
        "genau dort ist unser Angebot am stärksten. Wir sollten auch erwähnen, dass unsere Teams "
        "bereits nach den neuen Sicherheitsvorschriften zertifiziert sind, die im nächsten "
        "Frühjahr in Kraft treten. Die Entscheidung wird für Ende des Monats erwartet, deshalb ist "
        "der Zeitpunkt für beide Seiten wirklich sehr wichtig."
    ),
}
PROOF = {
    "en": "Our delivery record is excellent.",
    "sv": "Vår leveransförmåga är enastående.",
    "de": "Unsere Liefertreue ist hervorragend.",
}
NEXT_STEP = {
    "en": "I suggest that we book a meeting with their project manager on Tuesday and bring the updated price list.",
    "sv": "Jag föreslår att vi bokar ett möte med deras projektledare på tisdag och tar med den uppdaterade prislistan.",
    "de": "Ich schlage vor, dass wir für Dienstag ein Treffen mit ihrem Projektleiter vereinbaren und die aktualisierte Preisliste mitbringen.",
}
CLOSING = {
    "en": "Their team will review all offers carefully before any final choice is made.",
    "sv": "Deras team kommer att granska alla erbjudanden noggrant innan ett slutligt val görs.",
    "de": "Ihr Team wird alle Angebote sorgfältig prüfen, bevor eine endgültige Wahl getroffen wird.",
}
PUFF = {
    "en": "Our exceptional, guaranteed and world-class service is truly outstanding and unmatched in the market.",
    "sv": "Vår exceptionella, garanterade och fantastiska service är enastående och överlägsen på marknaden.",
    "de": "Unser außergewöhnlicher, garantierter und hervorragender Service ist einzigartig und unschlagbar am Markt.",
}


class SalesCard(BaseModel):
    snapshot: str


def dataset(n: int = 36) -> EvalDataset:
    cases = []
    for i in range(n):
        locale = LOCALES[i % len(LOCALES)]
        cases.append(
            EvalCase(
                id=f"case-{i:03d}",
                inputs={
                    "company": f"Nordvik {i}",
                    "project_value": 1_000_000 + 250_000 * i,
                    "city": CITIES[locale],
                },
                metadata={"locale": locale},
            )
        )
    return EvalDataset(name="sales-cards", cases=tuple(cases))


def snapshot(
    case: EvalCase,
    *,
    mention_value: bool | None = None,
    next_step: bool | None = None,
    puff: int = 0,
    locale: str | None = None,
) -> str:
    """The honest baseline snapshot, with any of its properties overridden."""
    index = int(case.id.rsplit("-", 1)[1])
    loc = locale or str(case.metadata["locale"])
    if mention_value is None:
        mention_value = index % 4 != 3
    if next_step is None:
        next_step = index % 5 in (0, 2)
    value = format_value(int(case.inputs["project_value"]), loc)
    clause = VALUE[loc].format(value=value) if mention_value else NO_VALUE[loc]
    parts = [
        BODY[loc].format(
            company=case.inputs["company"], city=case.inputs["city"], value_clause=clause
        )
    ]
    if index % 2 == 0:
        parts.append(PROOF[loc])
    parts += [PUFF[loc]] * puff
    parts.append(NEXT_STEP[loc] if next_step else CLOSING[loc])
    return " ".join(parts)


Behaviour = Callable[[EvalCase], str]


def runner(behaviours: dict[int, Behaviour], *, latency_ms: float = 120.0) -> CaseRunner:
    """A runner that writes `{"snapshot": behaviour(case)}` for the prompt version asked."""

    async def run(case: EvalCase, prompt: PromptVersionRef) -> CaseOutput:
        text = behaviours[prompt.version](case)
        out: dict[str, Any] = {"snapshot": text}
        return CaseOutput(output=out, latency_ms=latency_ms, cost_usd=0.0004, tokens=len(text) // 4)

    return run


def honest(case: EvalCase) -> str:
    return snapshot(case)


def better(case: EvalCase) -> str:
    return snapshot(case, next_step=True)


def worse(case: EvalCase) -> str:
    return snapshot(case, mention_value=False, next_step=False)


def gaming(case: EvalCase) -> str:
    return snapshot(case, next_step=True, puff=8)
