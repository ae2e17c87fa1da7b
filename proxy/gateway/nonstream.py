"""The non-streaming runner: one JSON response from the first attempt that answers."""

from __future__ import annotations

from proxy.gateway.attempts import Delivered, Try, run_attempts
from proxy.gateway.call import Call, Outcome
from proxy.gateway.http import Send, send_bytes, send_json
from proxy.gateway.settle import release, settle
from proxy.gateway.shape import completion_body
from proxy.gateway.transcript import Transcript
from proxy.gateway.upstream import upstream_call
from proxy.plugins.healing import heal_choices, healing_for
from proxy.providers import get_adapter
from proxy.providers.base import hide_reasoning
from proxy.transport import transport


async def run_once(call: Call, send: Send) -> None:
    """Try attempts in order until one answers (failover only on retryable errors), then bill and reply."""

    async def answer(current: Try) -> Delivered:
        attempt = current.attempt
        adapter = get_adapter(attempt.candidate.adapter)
        http_call, timeouts = upstream_call(call, attempt, stream=False)
        response = await transport.post(http_call, timeouts)
        body = await response.read()
        if response.status >= 400:
            raise adapter.map_error(response.status, response.headers, body)
        parsed = adapter.parse_response(body)
        current.answered()
        choice = parsed.choices[0] if parsed.choices else {}
        message = choice.get("message") or {}
        if call.req.body.get("reasoning", {}).get("exclude"):
            for c in parsed.choices:
                hide_reasoning(c)
        healing = healing_for(call.req.body, call.req.plugins)
        if healing is not None:  # the response-healing plugin (proxy/plugins/healing.py)
            heal_choices(parsed.choices, healing)
        if call.req.files is not None:  # the file-parser plugin's `file` annotations (proxy/plugins/file_parser.py)
            call.req.files.annotate(parsed.choices)
        if call.web is not None:  # the web plugin's citations (proxy/plugins/web)
            call.web.annotate(parsed.choices)
        outcome = Outcome(
            attempt=attempt,
            usage=parsed.usage,
            delivered_chars=len(message.get("content") or ""),
            has_output=bool(message.get("content") or message.get("tool_calls") or message.get("reasoning")),
            finish_reason=choice.get("finish_reason") or "",
            native_finish_reason=choice.get("native_finish_reason") or "",
            upstream_id=parsed.upstream_id,
            service_tier=parsed.service_tier,
            transcript=Transcript(parsed.choices) if call.org.log_prompts else None,
        )
        usage, _ = await settle(call, outcome)
        if call.skin is not None:
            payload = call.skin.render_body(call.render_context(attempt), parsed.choices, usage)
            await send_json(send, 200, payload, call.headers(attempt))
            return Delivered(
                completion_tokens=usage["completion_tokens"], tool_calls=tuple(message.get("tool_calls") or ())
            )
        payload = completion_body(
            generation_id=call.generation_id,
            created=call.created,
            model=attempt.model_slug,
            provider_name=attempt.candidate.provider_name,
            choices=parsed.choices,
            usage=usage,
            system_fingerprint=parsed.system_fingerprint,
            legacy=call.req.legacy_completion,
        )
        await send_json(send, 200, payload, call.headers(attempt))
        return Delivered(
            completion_tokens=usage["completion_tokens"], tool_calls=tuple(message.get("tool_calls") or ())
        )

    failed = await run_attempts(call, answer)
    if failed is not None:
        await release(call)
        failed.error.headers.update(call.headers())
        await send_bytes(send, failed.error.status, failed.error.body(call.skin), failed.error.headers)
