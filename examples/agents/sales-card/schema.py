"""sales-card's input and output types."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SalesCardInput(BaseModel):
    project_id: str = Field(description="Project id, e.g. P-0001.", min_length=3, max_length=40)
    role: str = Field(
        description="The reader's role, e.g. site manager.", min_length=2, max_length=80
    )
    locale: str = Field(
        default="en", description="Answer language: en, sv, da, no, fi, de, fr, cs, sk."
    )


class SalesCard(BaseModel):
    headline: str = Field(description="One line, under 120 characters.", max_length=120)
    snapshot: str = Field(
        description="110–160 words of plain prose about the project for the role."
    )
    key_facts: list[str] = Field(
        description="3–6 short 'label: value' items.", min_length=3, max_length=6
    )
    suggested_next_step: str = Field(description="A concrete next step for the role.")
    language: str = Field(description="The locale the card is written in.")
