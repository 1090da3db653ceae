"""OpenTelemetry tracing: a `keel.run` span per run segment (attributes `keel.tenant_id`,
`keel.user_id`, `keel.agent`, `keel.prompt_version`, `keel.run_id`, …) around Pydantic AI's
own GenAI spans (`invoke_agent`, `chat <model>`, `execute_tool <tool>`), parented to the trace
of whoever submitted the run (its W3C trace context is kept on the run envelope).

Without an exporter configured (`KEEL_OTLP_ENDPOINT`) no tracer provider is created: spans come
from OpenTelemetry's no-op API tracer and Pydantic AI is not instrumented, so tracing costs
nothing measurable. Prompt and output content is kept out of spans unless
`KEEL_TRACE_CONTENT=true`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.capabilities.instrumentation import Instrumentation
from pydantic_ai.models.instrumented import InstrumentationSettings

from keel import __version__
from keel.settings import Settings

TRACER_NAME = "keel"


def provider_from_settings(settings: Settings) -> TracerProvider | None:
    """A provider exporting over OTLP/HTTP when `otlp_endpoint` is set; None otherwise."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = Resource.create({"service.name": "keel", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
    )
    return provider


def current_trace_context() -> dict[str, str]:
    """The caller's W3C trace context (`traceparent`, …), to store on a run envelope."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


class Tracing:
    """The process's tracing: a provider (or none) and the spans Keel opens itself."""

    def __init__(self, provider: TracerProvider | None, *, include_content: bool = False) -> None:
        self.provider = provider
        self.include_content = include_content
        self._tracer = (
            provider.get_tracer(TRACER_NAME, __version__)
            if provider
            else trace.get_tracer(TRACER_NAME)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracing:
        return cls(provider_from_settings(settings), include_content=settings.trace_content)

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def capability(self) -> AbstractCapability[Any] | None:
        """Pydantic AI's instrumentation, when tracing is on."""
        if self.provider is None:
            return None
        return Instrumentation(
            InstrumentationSettings(
                tracer_provider=self.provider, include_content=self.include_content
            )
        )

    @contextmanager
    def run_span(
        self, attributes: Mapping[str, Any], parent: Mapping[str, str] | None = None
    ) -> Iterator[Span]:
        context = propagate.extract(dict(parent)) if parent else None
        clean = {k: v for k, v in attributes.items() if v is not None}
        with self._tracer.start_as_current_span(
            "keel.run", context=context, attributes=clean
        ) as span:
            yield span

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
