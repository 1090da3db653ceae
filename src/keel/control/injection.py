"""Prompt-injection heuristics for user input and for tool output (indirect injection).

Rules (each a finding with `rule="injection.<name>"` and a score 0–1):

- `ignore_instructions` — "ignore/disregard/forget the previous instructions" (en, sv, da, no,
  fi, de, fr, cs, sk);
- `role_override` — "you are now …", "act as the system / developer mode / DAN", "new
  instructions:" (several languages; a bare "you are now" scores low);
- `fake_role_marker` — chat-template or role markers inside content (`system:` at a line
  start, `<|im_start|>`, `[INST]`, `<<SYS>>`, `### System`);
- `secret_exfiltration` — asking to reveal the system prompt, passwords, API keys, credentials
  (several languages), or to send data to a URL, or a markdown image whose URL carries data;
- `tool_smuggling` — "call the delete_project tool", "invoke the transfer function";
  `tool_call_markup` — tool-call JSON or `<tool_call>` tags; `tool_instruction` — any "use the
  X tool" (low in user input, where people do say that). In tool output every tool-related
  rule scores 0.4 higher: a tool result has no business asking for tool calls;
- `encoded_payload` — base64 or hex blobs that decode to text matching the rules above (scored
  as the inner rule), or an instruction to decode-and-follow;
- `invisible_text` — Unicode tag characters ("ASCII smuggling", decoded and scanned too) and
  bidirectional overrides.

Before matching, text is NFKC-normalised, lower-cased, stripped of zero-width characters and
common Cyrillic/Greek look-alikes are folded to Latin, so "ig\\u200bnore previous
instructіons" is still caught; spans map back to the original text. These are heuristics:
they raise the cost of the obvious attacks and make them visible, not a proof of absence.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from keel.control.findings import Finding, GuardrailContext

_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CONFUSABLES = str.maketrans(
    "аеорсуххіјѕԁɡһⅰοαвкмнтνрϲ",
    "aeopcyxxijsdghioabkmhtvpc",
)
_TAG_START, _TAG_END = 0xE0000, 0xE007F


@dataclass(frozen=True)
class _Rule:
    name: str
    score: float
    pattern: re.Pattern[str]
    tool_related: bool = False


def _rule(name: str, score: float, *patterns: str, tool_related: bool = False) -> _Rule:
    return _Rule(
        name, score, re.compile("|".join(f"(?:{p})" for p in patterns), re.MULTILINE), tool_related
    )


_GAP = r"[^.!?\n]{0,40}?"
_SHORT = r"[^.!?\n]{0,25}?"

RULES: tuple[_Rule, ...] = (
    _rule(
        "ignore_instructions",
        0.9,
        # en
        rf"\b(?:ignore|disregard|forget|override|bypass)\b{_GAP}\b(?:previous|prior|above|earlier|preceding|all|any|your|system|initial|original|those)\b{_SHORT}\b(?:instructions?|prompts?|rules|directions|guidelines|constraints|guardrails)\b",
        # sv
        rf"\b(?:ignorera|strunta i|glöm|bortse från)\b{_GAP}\b(?:tidigare|föregående|ovanstående|alla|dina)\b{_SHORT}\b(?:instruktioner\w*|regler\w*|anvisningar\w*|direktiv\w*)",
        # da / no
        rf"\b(?:ignorer|glem|se bort fra|tilsidesæt|overse)\b{_GAP}\b(?:tidligere|forrige|ovenstående|alle|dine)\b{_SHORT}\b(?:instruks\w*|instruktion\w*|regler\w*|anvisning\w*|retningslinj\w*)",
        # fi
        rf"\b(?:unohda|ohita|sivuuta|jätä huomiotta)\b{_GAP}\b(?:aiemmat|aikaisemmat|edelliset|kaikki|yllä olevat)\b{_SHORT}\b(?:ohje\w*|sääntö\w*|säännöt|käsky\w*)",
        # de
        rf"\b(?:ignorier\w*|vergiss|vergessen sie|missachte\w*|übergehe\w*)\b{_GAP}\b(?:vorherig\w*|bisherig\w*|obig\w*|alle|deine|ihre|früher\w*)\b{_SHORT}\b(?:anweisungen|instruktionen|regeln|befehle|vorgaben)\b",
        # fr
        rf"\b(?:ignore[zr]?|oublie[zr]?|ne tiens pas compte)\b{_SHORT}\b(?:toutes? )?(?:les|tes|vos|ces) (?:instructions|consignes|règles|directives)\b",
        # cs / sk
        rf"\b(?:ignoruj\w*|zapomeň\w*|nedbej|zabudni\w*)\b{_GAP}\b(?:předchozí|všechny|dřívější|výše uvedené|predchádzajúce|všetky|doterajšie)\b{_SHORT}\b(?:instrukce|pokyny|pravidla|inštrukcie|pravidlá)\b",
    ),
    _rule(
        "role_override",
        0.8,
        r"\b(?:act|behave|respond|operate) as (?:if you (?:were|are) )?(?:the |an? )?(?:system|developer|admin\w*|root|unrestricted|unfiltered|jailbroken)\b",
        rf"\bpretend (?:to be|you are|you're)\b{_GAP}\b(?:system|developer|admin\w*|unrestricted|unfiltered|without (?:rules|restrictions|limits))",
        r"\b(?:developer|god|dan|jailbreak|unrestricted) mode\b",
        r"\bdo anything now\b",
        r"\bnew (?:system )?(?:instructions?|rules|prompt)\s*:",
        r"\b(?:neue anweisungen|nya instruktioner|nye instrukser|nye instruktioner|nouvelles instructions|uudet ohjeet|nové pokyny)\s*:",
        r"\b(?:du är nu|du er nu|du bist (?:jetzt|nun)|tu es (?:maintenant|désormais)|vous êtes (?:maintenant|désormais)|olet nyt|nyní jsi|teď jsi|teraz si)\b",
    ),
    _rule("role_override_weak", 0.4, r"\byou are now\b", r"\bfrom now on,? you\b"),
    _rule(
        "fake_role_marker",
        0.85,
        r"^[ \t>*#]*(?:\[|<)?(?:system|assistant|developer)(?:\]|>)?[ \t]*:",
        r"<\|?(?:im_start|im_end|system|endoftext|eot_id|start_header_id)\|?>",
        r"\[/?inst\]|<</?sys>>",
        r"^#{1,6}\s*(?:system|instructions?)\s*$",
    ),
    _rule(
        "secret_exfiltration",
        0.85,
        rf"\b(?:reveal|show|print|repeat|output|tell|display|give|leak|dump|list|what (?:is|are|was))\b{_GAP}\b(?:(?:the |your )?(?:system|initial|hidden|original) (?:prompt|instructions|message)|your (?:instructions|prompt|rules|guidelines|configuration)|(?:your|the|all|any|stored|saved|admin|other users'?) (?:api[ _-]?keys?|passwords?|secrets?|credentials|access tokens?)(?!\s*(?:reset|policy|requirements|rules|manager))|env(?:ironment)? variables)\b",
        rf"\b(?:visa|avslöja|skriv ut|upprepa|berätta)\b{_GAP}(?:systemprompt\w*|dina instruktioner|lösenord\w*|api-?nyck\w*|hemlighet\w*)",
        rf"\b(?:vis|afslør|avslør|gentag|gjenta|fortæl|fortell)\b{_GAP}(?:systemprompt\w*|dine instruk\w*|adgangskode\w*|passord\w*|api-?nøg\w*|api-?nøk\w*|hemmelig\w*)",
        rf"\b(?:zeige?|verrate|gib|wiederhole|nenne)\b{_GAP}(?:system-?prompt\w*|deine anweisungen|passw(?:ort|örter)|api-?schlüssel|geheimnisse|zugangsdaten)",
        rf"\b(?:révèle[zr]?|montre[zr]?|affiche[zr]?|répète[zr]?|donne[zr]?)\b{_GAP}(?:prompt système|invite système|tes instructions|vos instructions|mots? de passe|clés? api|secrets?)",
        rf"\b(?:näytä|paljasta|kerro|toista)\b{_GAP}(?:järjestelmäkehot\w*|ohjeesi|salasan\w*|api-?avai\w*)",
        rf"\b(?:ukaž|prozraď|vypiš|zopakuj|ukáž|prezraď|vypíš)\b{_GAP}(?:systémový prompt|své instrukce|svoje inštrukcie|hesl\w*|api klíč\w*|api kľúč\w*)",
    ),
    _rule(
        "data_exfiltration",
        0.75,
        rf"\b(?:send|post|upload|forward|transmit|exfiltrate|email)\b{_GAP}{_SHORT}\bhttps?://",
        r"!\[[^\]]*\]\(\s*https?://[^)\s]*\?[^)\s]*=",
    ),
    _rule(
        "tool_smuggling",
        0.6,
        r"\b(?:call|invoke|run|execute|trigger|use)\s+(?:the\s+)?[`'\"]?\w*(?:delete|drop|remove|wipe|purge|destroy|transfer|refund|pay)\w*[`'\"]?\s+(?:tool|function|action|endpoint)\b",
        tool_related=True,
    ),
    _rule(
        "tool_call_markup",
        0.6,
        r"\"(?:tool|tool_name|function|name)\"\s*:\s*\"[^\"]+\"\s*,\s*\"(?:arguments|args|parameters|input)\"\s*:",
        r"<\s*(?:tool_call|function_call|tool_use|invoke)\b",
        tool_related=True,
    ),
    _rule(
        "tool_instruction",
        0.3,
        r"\b(?:call|invoke|run|execute|trigger|use)\s+(?:the\s+)?[`'\"]?[a-z_][\w.-]*[`'\"]?\s+(?:tool|function|action)\b",
        rf"\b(?:anropa|kör|använd)\b{_SHORT}\bverktyg\w*",
        rf"\b(?:kald|kall|kør|kjør|brug|bruk)\b{_SHORT}\b(?:værktøj\w*|verktøy\w*)",
        rf"\b(?:rufe|führe|nutze|verwende)\b{_SHORT}\b(?:tool|werkzeug|funktion)\b",
        rf"\b(?:appelle[zr]?|exécute[zr]?|utilise[zr]?)\b{_SHORT}\b(?:l'outil|la fonction)\b",
        rf"\b(?:kutsu|suorita|käytä)\b{_SHORT}\b(?:työkalu\w*|funktio\w*)",
        rf"\b(?:zavolej|spusť|použij|zavolaj|použi)\b{_SHORT}\b(?:nástroj\w*|funkci\w*)",
        tool_related=True,
    ),
    _rule(
        "decode_and_follow",
        0.7,
        rf"\b(?:decode|base64|rot13|hex)\b{_GAP}\b(?:and|then)\b{_SHORT}\b(?:follow|execute|run|obey|do)\b",
    ),
)

_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){16,}(?![0-9a-fA-F])")


_SPECIAL = _ZERO_WIDTH | _BIDI


def normalize(text: str) -> tuple[str, Sequence[int]]:
    """Matching form of `text` and, for each of its characters, the index it came from."""
    if text.isascii():
        return text.lower(), range(len(text))
    lowered = text.lower()
    if (
        len(lowered) == len(text)
        and unicodedata.is_normalized("NFKC", text)
        and not _SPECIAL.intersection(text)
        and not any(_TAG_START <= ord(ch) <= _TAG_END for ch in text if ord(ch) > 0xFFFF)
    ):
        return lowered.translate(_CONFUSABLES), range(len(text))
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        code = ord(ch)
        if _TAG_START <= code <= _TAG_END:
            decoded = chr(code - _TAG_START) if 0x20 <= code - _TAG_START < 0x7F else ""
            out.append(decoded.lower())
            index.extend([i] * len(decoded))
            continue
        if ch in _SPECIAL:
            continue
        folded = unicodedata.normalize("NFKC", ch).lower().translate(_CONFUSABLES)
        out.append(folded)
        index.extend([i] * len(folded))
    return "".join(out), index


def _printable_ratio(text: str) -> float:
    return sum(ch.isprintable() or ch in "\n\t" for ch in text) / max(len(text), 1)


def _decoded_blobs(text: str) -> Iterator[tuple[int, int, str]]:
    for m in _BASE64.finditer(text):
        blob = m.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        yield m.start(), m.end(), raw.decode("utf-8", errors="replace")
    for m in _HEX.finditer(text):
        yield m.start(), m.end(), bytes.fromhex(m.group(0)).decode("utf-8", errors="replace")


def _match_rules(norm: str, context: GuardrailContext) -> Iterator[tuple[_Rule, float, int, int]]:
    indirect = context.stage == "tool_output"
    for rule in RULES:
        score = min(1.0, rule.score + 0.4) if indirect and rule.tool_related else rule.score
        for m in rule.pattern.finditer(norm):
            if m.end() > m.start():
                yield rule, score, m.start(), m.end()


def find_injection(text: str, context: GuardrailContext | None = None) -> list[Finding]:
    """Prompt-injection findings in `text`, with spans into the original string."""
    context = context or GuardrailContext()
    norm, index = normalize(text)
    findings: list[Finding] = []
    for rule, score, start, end in _match_rules(norm, context):
        findings.append(
            Finding(
                "prompt_injection",
                f"injection.{rule.name}",
                score,
                index[start],
                index[end - 1] + 1,
                f"prompt injection: {rule.name.replace('_', ' ')}",
            )
        )
    for start, end, decoded in _decoded_blobs(text):
        if _printable_ratio(decoded) < 0.9:
            continue
        inner_norm, _ = normalize(decoded)
        inner = max((s for _, s, _, _ in _match_rules(inner_norm, context)), default=0.0)
        if inner:
            findings.append(
                Finding(
                    "prompt_injection",
                    "injection.encoded_payload",
                    inner,
                    start,
                    end,
                    "encoded text that decodes to an injection",
                )
            )
    tags = [i for i, ch in enumerate(text) if _TAG_START <= ord(ch) <= _TAG_END]
    if tags:
        findings.append(
            Finding(
                "prompt_injection",
                "injection.invisible_text",
                0.8,
                tags[0],
                tags[-1] + 1,
                "invisible Unicode tag characters",
            )
        )
    bidi = [i for i, ch in enumerate(text) if ch in _BIDI]
    if bidi:
        findings.append(
            Finding(
                "prompt_injection",
                "injection.invisible_text",
                0.6,
                bidi[0],
                bidi[-1] + 1,
                "bidirectional override characters",
            )
        )
    return sorted(findings, key=lambda f: (f.start or 0, -f.score))


class InjectionDetector:
    """The guardrail detector: `find_injection` as a `(text, context) -> findings` callable."""

    def __call__(self, text: str, context: GuardrailContext) -> list[Finding]:
        return find_injection(text, context)


__all__ = ["RULES", "InjectionDetector", "find_injection", "normalize"]
