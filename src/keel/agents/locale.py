"""The supported locales and their language names (one prompt per agent, locale as a variable)."""

from __future__ import annotations

LANGUAGES: dict[str, str] = {
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
ALIASES = {"nb": "no", "nn": "no", "se": "sv", "dk": "da", "cz": "cs", "gb": "en", "us": "en"}
DEFAULT_LOCALE = "en"


def normalise_locale(value: str | None) -> str:
    """`sv`, `sv-SE`, `SV`, `nb_NO` → a supported code; unknown or empty → `en`."""
    if not value:
        return DEFAULT_LOCALE
    code = value.strip().lower().replace("_", "-").split("-")[0]
    code = ALIASES.get(code, code)
    return code if code in LANGUAGES else DEFAULT_LOCALE


def language_name(locale: str) -> str:
    return LANGUAGES[normalise_locale(locale)]
