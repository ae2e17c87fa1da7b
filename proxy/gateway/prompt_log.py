"""The prompt-log record of one generation, sealed in the gateway for organizations that opted in.

Only called when `call.org.log_prompts` is set. The record is encrypted here, before the usage event
goes to the gate's queue, so no plaintext body reaches Redis or Celery; settlement stores the token.
"""

from __future__ import annotations

from billing.prompt_log import prompt_log_seal
from proxy.gateway.call import Call, Outcome


def sealed_record(call: Call, outcome: Outcome) -> str:
    """The encrypted {request, response} of this generation; "" when no encryption key is configured."""
    record = {
        "request": call.req.body,
        "response": {
            "model": outcome.attempt.model_slug,
            "provider": outcome.attempt.candidate.provider_name,
            "choices": outcome.transcript.choices() if outcome.transcript is not None else [],
            "finish_reason": outcome.finish_reason,
            "cancelled": outcome.cancelled,
            "truncated": outcome.truncated,
        },
    }
    return prompt_log_seal(record)
