"""pitch's input and output types."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PitchInput(BaseModel):
    project_id: str = Field(min_length=1, max_length=40)
    role: str = Field(default="salesperson", min_length=2, max_length=80)
    locale: str = "en"


class Pitch(BaseModel):
    headline: str = Field(max_length=120)
    snapshot: str = Field(description="60–90 words about the project.")
    suggested_next_step: str
