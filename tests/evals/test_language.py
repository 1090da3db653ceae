"""The offline detector on real text in every supported language, close pairs included."""

from __future__ import annotations

import pytest

from keel.evals.language import SUPPORTED, detect_language, normalise_language

from .language_samples import SNAPSHOTS, STORIES


@pytest.mark.parametrize("code", SUPPORTED)
@pytest.mark.parametrize("texts", [SNAPSHOTS, STORIES], ids=["snapshot", "story"])
def test_detects_every_supported_language_on_100_word_texts(
    code: str, texts: dict[str, str]
) -> None:
    text = texts[code]
    assert len(text.split()) >= 100
    guess = detect_language(text)
    assert guess.language == code, guess.scores
    assert guess.confidence > 0.15


@pytest.mark.parametrize(
    ("a", "b"), [("da", "no"), ("no", "da"), ("da", "sv"), ("no", "sv"), ("cs", "sk"), ("sk", "cs")]
)
def test_close_pairs_are_separated_by_a_clear_margin(a: str, b: str) -> None:
    for texts in (SNAPSHOTS, STORIES):
        scores = detect_language(texts[a]).scores
        assert scores[a] > scores[b] * 1.2, scores


def test_short_or_empty_text_gives_no_guess() -> None:
    assert detect_language("").language is None
    assert detect_language("OK 42").language is None


def test_detection_is_deterministic() -> None:
    assert detect_language(SNAPSHOTS["sk"]) == detect_language(SNAPSHOTS["sk"])


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("sv-SE", "sv"),
        ("nb_NO", "no"),
        ("nn", "no"),
        ("Danish", "da"),
        ("cs-CZ", "cs"),
        ("SK", "sk"),
        ("pt-BR", None),
    ],
)
def test_locales_and_names_normalise_to_codes(raw: str, code: str | None) -> None:
    assert normalise_language(raw) == code
