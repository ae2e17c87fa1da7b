"""A local mock LLM provider speaking OpenAI, Anthropic and Gemini wire formats, with injectable faults.

Run it with `python -m tests.mockprovider --port N`, or in-process with `MockProvider().start()`.
"""

from __future__ import annotations

from tests.mockprovider.scenarios import (
    DEFAULT_PIECES,
    JSON_PIECES,
    PROMPT_TOKENS,
    REASONING_PIECES,
    TOOL_ARGUMENTS,
    TOOL_CALL_TOKENS,
    Scenario,
    scenario_for_model,
)
from tests.mockprovider.server import MockProvider, RecordedRequest, build_app, free_port

__all__ = [
    "DEFAULT_PIECES",
    "JSON_PIECES",
    "PROMPT_TOKENS",
    "REASONING_PIECES",
    "TOOL_ARGUMENTS",
    "TOOL_CALL_TOKENS",
    "MockProvider",
    "RecordedRequest",
    "Scenario",
    "build_app",
    "free_port",
    "scenario_for_model",
]
