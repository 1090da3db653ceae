"""Offline, deterministic language identification for en, sv, da, no, fi, de, fr, cs, sk.

Each language has a profile written by hand:

- `words`: its most frequent function words (weight 1 per occurrence);
- `markers`: words that separate it from its nearest neighbour (weight 3) — Danish *af,
  hvad, nu, noget, lidt, måske, meget, uden, mellem, blive* against Norwegian *av, hva,
  nå, noe, litt, kanskje, mye, uten, mellom, bli*; Czech *jsou, jsem, který, když, jen,
  pro, není* against Slovak *sú, som, ktorý, keď, len, pre, nie*;
- `ngrams`: character n-grams and letters counted anywhere in the text (Czech ř ů ě,
  Slovak ľ ĺ ŕ ô, Norwegian øy and -sjon, Danish øj, -hed and -erne, Swedish ä ö,
  Finnish ää and yy, German ß and sch, French eau and ç).

The score of a language is the weighted count of its features divided by the number of
words; the best score wins. With fewer than `MIN_EVIDENCE` weighted hits the text is too
short to say, and the guess is `None`. On 100+ word texts this separates the close pairs
(da/no/sv, cs/sk) reliably; on a single short sentence it is a best effort.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SUPPORTED = ("en", "sv", "da", "no", "fi", "de", "fr", "cs", "sk")

LANGUAGE_NAMES = {
    "en": "English",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "de": "German",
    "fr": "French",
    "cs": "Czech",
    "sk": "Slovak",
}

_LOCALE_ALIASES = {"nb": "no", "nn": "no", "cz": "cs", "se": "sv", "dk": "da"}

MIN_EVIDENCE = 4.0
_MARKER_WEIGHT = 3.0
_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class _Profile:
    words: frozenset[str]
    markers: frozenset[str]
    ngrams: dict[str, float] = field(default_factory=dict)


def _w(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PROFILES: dict[str, _Profile] = {
    "en": _Profile(
        words=_w(
            "the and of to in is that it for with as on this are be by we you your our was "
            "have has not but from at or will can an they their which more about would also "
            "into than been were there what all so if its who them these when only how other "
            "some just like over such most make after because could should any each those "
            "through both very where while"
        ),
        markers=_w("the and of that with which would been were they their through"),
        ngrams={"th": 0.15, "wh": 0.2, "ing ": 0.4},
    ),
    "sv": _Profile(
        words=_w(
            "och att det som en är på av för med till den har de inte om ett men var jag vi "
            "ni kan så från eller vid när hur vad sig också skulle efter nu bara mycket under "
            "mellan sina sin sitt oss er våra vår kommer finns blir även utan där här denna "
            "detta dessa vilket vilka alla andra får måste ska sedan redan genom både enligt "
            "kunna göra gör tack mer mest något några dig mig er ert era hos upp ut själv "
            "sådan bra hela första år igen"
        ),
        markers=_w(
            "och att är inte jag från när hur vad också mycket även utan något några måste "
            "redan enligt göra gör tack själv sådan igen vilka dessa denna"
        ),
        ngrams={"ä": 0.6, "ö": 0.5, "å": 0.2, "tt ": 0.2},
    ),
    "da": _Profile(
        words=_w(
            "og at det er en et den til på af for med de ikke som har jeg vi kan var men så "
            "fra eller om hvis når hvor hvad sig også skal vil efter nu kun meget under mellem "
            "deres vores jeres bliver blive blev kommer findes uden her der denne dette disse "
            "hvilket alle andre får skulle siden allerede gennem både ifølge kunne gøre gør "
            "tak mere mest noget nogle lidt måske sammen tilbage hvordan dig mig jer os hos op "
            "ud ved selv sådan godt hele første år igen"
        ),
        markers=_w(
            "af hvad nu noget nogle nogen lidt måske meget efter mellem uden blive bliver blev "
            "gennem gøre gør tilbage ud op sådan jer jeres igen kun hvilket mig dig sig tak"
        ),
        ngrams={
            "æ": 0.3,
            "ø": 0.2,
            "å": 0.1,
            "øj": 1.0,
            "hed ": 1.0,
            "erne ": 1.0,
            "ligt ": 1.0,
            "tion": 0.3,
        },
    ),
    "no": _Profile(
        words=_w(
            "og å det er en et ei den til på av for med de ikke som har jeg vi kan var men så "
            "fra eller om hvis når hvor hva seg også skal vil etter nå bare mye veldig under "
            "mellom deres vår våre blir bli ble kommer finnes uten her der denne dette disse "
            "alle andre får skulle siden allerede gjennom både ifølge kunne gjøre gjør takk "
            "mer mest noe noen litt kanskje sammen tilbake hvordan deg meg dere oss hos opp ut "
            "ved selv slik godt hele første år igjen"
        ),
        markers=_w(
            "å av hva nå noe noen litt kanskje mye veldig etter mellom uten bli blir ble "
            "gjennom gjøre gjør tilbake ut opp slik dere igjen meg deg seg takk ei"
        ),
        ngrams={
            "æ": 0.3,
            "ø": 0.2,
            "å": 0.1,
            "øy": 1.0,
            "sjon": 1.0,
            "het ": 0.5,
            "kj": 0.4,
            "gj": 0.4,
        },
    ),
    "fi": _Profile(
        words=_w(
            "ja on ei että se hän oli ovat mutta kun myös tai kuin jos niin tämä joka sen ole "
            "olla voi vain kanssa mukaan sekä jo nyt meidän teidän te me minä sinä he ne mitä "
            "miten koska kaikki hyvin paljon vuoden yli ennen jälkeen siitä tässä jotka joita "
            "olisi voidaan tulee uusi uuden hyvä teille aina vielä sitten täysin heti noin "
            "myös sen siis kuitenkin"
        ),
        markers=_w(
            "että ovat mutta myös kuin tämä joka olla kanssa mukaan sekä meidän teidän koska kaikki"
        ),
        ngrams={
            "ää": 1.0,
            "yy": 1.0,
            "aa": 0.5,
            "uu": 0.5,
            "ii": 0.4,
            "ä": 0.3,
            "kk": 0.3,
            "ssa": 0.5,
            "ssä": 0.8,
        },
    ),
    "de": _Profile(
        words=_w(
            "der die das und ist nicht ich sie es mit den dem des ein eine einen einem einer "
            "zu auf für von im sich auch wir ihr ihre ihren werden wird wurde sind hat haben "
            "bei nach aus um oder aber wenn wie noch nur über dass diese dieser durch kann "
            "können mehr sehr schon so unsere unser zum zur vom bis als was man gibt ihnen"
        ),
        markers=_w(
            "der die das und ist nicht ich mit dem ein eine einen auch werden wird sind dass sehr"
        ),
        ngrams={"ß": 1.0, "ü": 0.6, "sch": 0.4, "ei": 0.15, "ch": 0.1},
    ),
    "fr": _Profile(
        words=_w(
            "le la les et est de des du un une que qui pour pas vous nous dans sur avec ce "
            "cette ces il elle ils sont par plus mais ou au aux son sa ses leur leurs été être "
            "avoir fait comme tout tous très bien aussi notre nos votre vos entre sans peut où "
            "même donc alors chez depuis ne je en"
        ),
        markers=_w("le la les est des une que qui pour pas vous nous dans avec cette sont très"),
        ngrams={"é": 0.4, "è": 0.5, "ç": 0.8, "eau": 0.8, "qu": 0.3, "ê": 0.5, "à": 0.4},
    ),
    "cs": _Profile(
        words=_w(
            "je se na že to do jsou jsem jsme jste by být byl byla bylo který která které co "
            "jak tak ale nebo také jen pro po od při jako když už však ještě není mají má může "
            "můžeme bude budou jeho její jejich naše náš vaše váš vám vás nás tento tato toto "
            "této tohoto proto protože tedy velmi více před mezi podle bez přes až kde ten ta "
            "ty tím tom svůj své svých děkujeme"
        ),
        markers=_w(
            "se jsou jsem jsme jste být který která které co jak nebo také jen pro při jako "
            "když ještě není mají může budou jejich tato této tohoto proto protože velmi více "
            "před mezi podle přes svůj děkujeme"
        ),
        ngrams={"ř": 1.5, "ů": 1.5, "ě": 1.5, "ou ": 0.3, "ní ": 0.5},
    ),
    "sk": _Profile(
        words=_w(
            "je sa na že to do sú som sme ste by byť bol bola bolo ktorý ktorá ktoré čo ako "
            "tak ale alebo tiež len pre po od pri keď už však ešte nie majú má môže môžeme "
            "bude budú jeho jej ich naše náš vaše váš vám vás nás tento táto toto tejto tohto "
            "preto pretože teda veľmi viac pred medzi podľa bez cez až kde ten tá tí tým tom "
            "svoj svoje svojich ďakujeme aj"
        ),
        markers=_w(
            "sa sú som sme ste byť ktorý ktorá ktoré čo ako alebo tiež len pre pri keď ešte "
            "nie majú môže budú táto tejto tohto preto pretože veľmi viac medzi podľa cez "
            "svoj ďakujeme aj"
        ),
        ngrams={
            "ľ": 1.5,
            "ĺ": 1.5,
            "ŕ": 1.5,
            "ô": 1.2,
            "ä": 0.3,
            "ia": 0.3,
            "ie": 0.3,
            "osť": 1.0,
            "dz": 0.4,
        },
    ),
}


@dataclass(frozen=True)
class LanguageGuess:
    """The detected language (`None` when the evidence is too thin) and every score."""

    language: str | None
    confidence: float
    scores: dict[str, float]


def normalise_language(code_or_locale: str) -> str | None:
    """`sv-SE` → `sv`, `nb_NO` → `no`, `Swedish` → `sv`; `None` if not supported."""
    raw = code_or_locale.strip()
    lowered = raw.lower()
    for code, name in LANGUAGE_NAMES.items():
        if lowered == name.lower():
            return code
    base = re.split(r"[-_]", lowered, maxsplit=1)[0]
    base = _LOCALE_ALIASES.get(base, base)
    return base if base in SUPPORTED else None


def detect_language(text: str) -> LanguageGuess:
    """Score `text` against every profile; deterministic, no I/O, a few µs per word."""
    lowered = text.lower()
    tokens = _WORD.findall(lowered)
    padded = " ".join(tokens) + " "
    raw: dict[str, float] = {}
    for code, profile in _PROFILES.items():
        score = 0.0
        for tok in tokens:
            if tok in profile.markers:
                score += _MARKER_WEIGHT
            elif tok in profile.words:
                score += 1.0
        for gram, weight in profile.ngrams.items():
            score += weight * padded.count(gram)
        raw[code] = score
    n = max(len(tokens), 1)
    scores = {code: round(s / n, 6) for code, s in raw.items()}
    ranked = sorted(raw.items(), key=lambda kv: (-kv[1], kv[0]))
    best_code, best = ranked[0]
    second = ranked[1][1]
    if best < MIN_EVIDENCE:
        return LanguageGuess(None, 0.0, scores)
    confidence = (best - second) / best if best > 0 else 0.0
    return LanguageGuess(best_code, round(confidence, 6), scores)
