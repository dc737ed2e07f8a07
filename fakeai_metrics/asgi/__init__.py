"""The ASGI edge: the middleware that measures an OpenAI-compatible server, and what it reads.

``middleware`` is the ASGI plumbing; ``sse`` finds server-sent-event boundaries in bytes;
``openai_stream`` says what one event of an OpenAI stream means; ``openai_payloads`` reads usage
and errors out of OpenAI, Responses-API, FakeAI and vLLM bodies.
"""

from .middleware import OPENAI_ROUTES, FakeAIMetricsMiddleware

__all__ = ["FakeAIMetricsMiddleware", "OPENAI_ROUTES"]
