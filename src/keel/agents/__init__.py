"""Agent specs: loading a folder, building a Pydantic AI `Agent` from it, model routing, offline models."""
