"""What a model request cost, in USD.

Prices come from `Settings.model_prices` first (fnmatch patterns, USD per million input and
output tokens: for self-hosted and offline models, which no price list knows), then from the
`genai-prices` package through the response's provider and model. Unknown models cost 0 and
say so (`priced=False`), rather than guessing.
"""

from __future__ import annotations

import fnmatch
import warnings
from dataclasses import dataclass

from pydantic_ai.messages import ModelResponse

from keel.settings import Settings


@dataclass(frozen=True)
class Cost:
    usd: float
    priced: bool


def configured_price(model: str, settings: Settings) -> tuple[float, float] | None:
    for pattern, price in settings.model_prices.items():
        if fnmatch.fnmatchcase(model, pattern):
            return price
    return None


def request_cost(
    model: str,
    input_tokens: int,
    output_tokens: int,
    settings: Settings,
    response: ModelResponse | None = None,
) -> Cost:
    price = configured_price(model, settings)
    if price is not None:
        return Cost((input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, True)
    if model.startswith("offline:"):
        return Cost(0.0, False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if response is not None:
                return Cost(float(response.cost().total_price), True)
            # by the response's model name alone (the fabric records usage without the
            # response object): genai-prices finds the provider from the name
            from genai_prices import Usage, calc_price

            usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
            return Cost(float(calc_price(usage, model).total_price), True)
    except Exception:
        return Cost(0.0, False)
