"""The OpenAI Responses skin (`POST /api/v1/responses`): the core's chat answer as a `response`.

Output items, in the order the model produced them: a `reasoning` item (its text as a summary, and
every reasoning detail packed into `encrypted_content` so it can be passed back), a `message` with
one `output_text` part, then one `function_call` item per tool call. Streams emit the documented
events, each with a `sequence_number`, ending in response.completed (or .incomplete / .failed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from proxy.providers._common import merge_details
from proxy.skins.base import RenderContext, StreamRenderer, sse
from proxy.skins.details import pack_all
from proxy.skins.responses_request import to_chat

ERRORS = {
    400: ("invalid_request_error", "invalid_prompt"),
    401: ("authentication_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("permission_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    408: ("server_error", "timeout"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _error(status: int, message: str) -> dict[str, Any]:
    kind, code = ERRORS.get(status, ("server_error", "server_error"))
    return {"type": kind, "code": code, "message": message, "param": None}


def render_error(status: int, message: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
    error = _error(status, message) | {"metadata": metadata}
    return {"error": error, "error_type": (metadata or {}).get("error_type") or error["type"]}


def responses_usage(usage: dict[str, Any]) -> dict[str, Any]:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": usage["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": int(prompt_details.get("cached_tokens") or 0)},
        "output_tokens": usage["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
        "cost": usage.get("cost"),
        "is_byok": usage.get("is_byok"),
        "cost_details": usage.get("cost_details"),
    }


def reasoning_item(item_id: str, text: str, details: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
        "encrypted_content": pack_all(details) if details else None,
        "status": status,
    }


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _reasoning_text(message: dict[str, Any]) -> str:
    if message.get("reasoning"):
        return str(message["reasoning"])
    return "".join(str(d.get("text") or d.get("summary") or "") for d in message.get("reasoning_details") or ())


def output_items(ctx: RenderContext, message: dict[str, Any]) -> list[dict[str, Any]]:
    gid = ctx.generation_id
    items: list[dict[str, Any]] = []
    details = [dict(d) for d in message.get("reasoning_details") or ()]
    text = _reasoning_text(message)
    if text or details:
        items.append(reasoning_item(f"rs_{gid}", text, details, "completed"))
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content or not message.get("tool_calls"):
        items.append(message_item(f"msg_{gid}", content or "", "completed"))
    for i, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        call_id = call.get("id") or f"call_{gid}_{i}"
        items.append(call_item(f"fc_{gid}_{i}", call_id, fn.get("name") or "", fn.get("arguments") or "", "completed"))
    return items


class ResponsesSkin:
    name = "responses"

    def __init__(self) -> None:
        self.request: dict[str, Any] = {}

    def translate(self, body: dict[str, Any]) -> dict[str, Any]:
        self.request = body
        return to_chat(body)

    def response(
        self,
        ctx: RenderContext,
        *,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        error: dict[str, Any] | None = None,
        incomplete: str | None = None,
    ) -> dict[str, Any]:
        """The `response` object; request settings are echoed back as the Responses API does."""
        req = self.request
        return {
            "id": ctx.generation_id,
            "object": "response",
            "created_at": ctx.created,
            "status": status,
            "model": ctx.model,
            "provider": ctx.provider_name,
            "output": output,
            "usage": usage,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": req.get("instructions"),
            "max_output_tokens": req.get("max_output_tokens"),
            "metadata": req.get("metadata") or {},
            "parallel_tool_calls": req.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": req.get("reasoning"),
            "store": False,
            "background": False,
            "temperature": req.get("temperature"),
            "top_p": req.get("top_p"),
            "text": req.get("text") or {"format": {"type": "text"}},
            "tool_choice": req.get("tool_choice", "auto"),
            "tools": req.get("tools") or [],
            "truncation": req.get("truncation") or "disabled",
            "user": req.get("user"),
        }

    def render_body(self, ctx: RenderContext, choices: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
        choice = choices[0] if choices else {}
        incomplete = INCOMPLETE.get(choice.get("finish_reason") or "")
        return self.response(
            ctx,
            status="incomplete" if incomplete else "completed",
            output=output_items(ctx, choice.get("message") or {}),
            usage=responses_usage(usage),
            incomplete=incomplete,
        )

    def stream_renderer(self, ctx: RenderContext) -> StreamRenderer:
        return ResponsesStream(self, ctx)

    def render_error(self, status: int, message: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
        return render_error(status, message, metadata)


class ResponsesStream:
    """Chat chunk choices in, Responses stream events out."""

    def __init__(self, skin: ResponsesSkin, ctx: RenderContext) -> None:
        self.skin = skin
        self.ctx = ctx
        self.seq = 0
        self.started = False
        self.output: list[dict[str, Any]] = []  # finished items
        self.open: str | None = None  # "reasoning" | "message" | "call"
        self.text = ""  # of the open reasoning or message item
        self.details: list[dict[str, Any]] = []
        self.calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> its function_call item
        self.item_id = ""  # of the open item
        self.finish: str | None = None
        self.pending_call: dict[str, Any] = {}  # the open function_call item, arguments growing

    def _event(self, out: list[bytes], kind: str, **payload: Any) -> None:
        out.append(sse(kind, {"type": kind, "sequence_number": self.seq, **payload}))
        self.seq += 1

    def _head(self, out: list[bytes]) -> None:
        if not self.started:
            self.started = True
            response = self.skin.response(self.ctx, status="in_progress", output=[], usage=None)
            self._event(out, "response.created", response=response)
            self._event(out, "response.in_progress", response=response)

    @property
    def _index(self) -> int:
        return len(self.output)

    def _open_item(self, out: list[bytes], kind: str, item: dict[str, Any]) -> None:
        """Close the open item, then announce `item` (whose id `_item_id` gave) as the next one."""
        self._close(out)
        self.open, self.text, self.item_id = kind, "", item["id"]
        self._event(out, "response.output_item.added", output_index=self._index, item=item)

    def _item_id(self, prefix: str) -> str:
        # A stream may hold several items of one kind (reasoning, text, reasoning...): ids by position.
        return f"{prefix}_{self.ctx.generation_id}_{self._index + (0 if self.open is None else 1)}"

    def _close(self, out: list[bytes]) -> None:
        index = self._index
        if self.open == "reasoning":
            item = reasoning_item(self.item_id, self.text, merge_details(self.details), "completed")  # type: ignore[arg-type]
            if self.text:
                part = {"type": "summary_text", "text": self.text}
                where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
                self._event(out, "response.reasoning_summary_text.done", **where, text=self.text)
                self._event(out, "response.reasoning_summary_part.done", **where, part=part)
            self._done(out, item)
        elif self.open == "message":
            item = message_item(self.item_id, self.text, "completed")
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            self._event(out, "response.output_text.done", **where, text=self.text, logprobs=[])
            self._event(out, "response.content_part.done", **where, part=item["content"][0])
            self._done(out, item)
        elif self.open == "call":
            item = self.pending_call
            where = {"item_id": item["id"], "output_index": index}
            self._event(
                out, "response.function_call_arguments.done", **where, arguments=item["arguments"], name=item["name"]
            )
            item["status"] = "completed"
            self._done(out, item)
        self.open = None

    def _done(self, out: list[bytes], item: dict[str, Any]) -> None:
        self._event(out, "response.output_item.done", output_index=self._index, item=item)
        self.output.append(item)

    def _reasoning(self, out: list[bytes], text: str, details: list[dict[str, Any]]) -> None:
        if self.open != "reasoning":
            self._open_item(out, "reasoning", reasoning_item(self._item_id("rs"), "", [], "in_progress"))
            self.details = []
        self.details.extend(dict(d) for d in details)
        if not text:
            return
        where = {"item_id": self.item_id, "output_index": self._index, "summary_index": 0}
        if not self.text:
            part = {"type": "summary_text", "text": ""}
            self._event(out, "response.reasoning_summary_part.added", **where, part=part)
        self.text += text
        self._event(out, "response.reasoning_summary_text.delta", **where, delta=text)

    def _content(self, out: list[bytes], text: str) -> None:
        if self.open != "message":
            item = {**message_item(self._item_id("msg"), "", "in_progress"), "content": []}
            self._open_item(out, "message", item)
        where = {"item_id": self.item_id, "output_index": self._index, "content_index": 0}
        if not self.text:
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            self._event(out, "response.content_part.added", **where, part=part)
        self.text += text
        self._event(out, "response.output_text.delta", **where, delta=text, logprobs=[])

    def _call(self, out: list[bytes], call: dict[str, Any]) -> None:
        position = int(call.get("index") or 0)
        fn = call.get("function") or {}
        if position not in self.calls:
            call_id = call.get("id") or f"call_{self.ctx.generation_id}_{position}"
            item = call_item(self._item_id("fc"), call_id, fn.get("name") or "", "", "in_progress")
            self._open_item(out, "call", dict(item))
            self.pending_call = item
            self.calls[position] = item
        arguments = fn.get("arguments")
        if not arguments:
            return
        target = self.calls[position]
        # A fragment for a call already closed still lands in its item (the final response is whole);
        # only the open call can still stream deltas.
        target["arguments"] += arguments
        if target is self.pending_call and self.open == "call":
            where = {"item_id": target["id"], "output_index": self._index}
            self._event(out, "response.function_call_arguments.delta", **where, delta=arguments)

    def choices(self, choices: Sequence[Any]) -> bytes:
        out: list[bytes] = []
        self._head(out)
        for choice in choices:
            delta = choice.get("delta") or {}
            details = delta.get("reasoning_details") or []
            text = delta.get("reasoning") or ""
            if not text:
                text = "".join(str(d.get("text") or d.get("summary") or "") for d in details)
            if text or details:
                self._reasoning(out, text, details)
            if delta.get("content"):
                self._content(out, delta["content"])
            for call in delta.get("tool_calls") or ():
                self._call(out, call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return b"".join(out)

    def final(self, usage: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        self._head(out)
        self._close(out)
        incomplete = INCOMPLETE.get(self.finish or "")
        response = self.skin.response(
            self.ctx,
            status="incomplete" if incomplete else "completed",
            output=self.output,
            usage=responses_usage(usage),
            incomplete=incomplete,
        )
        self._event(out, "response.incomplete" if incomplete else "response.completed", response=response)
        return b"".join(out)

    def error(self, error: dict[str, Any], usage: dict[str, Any] | None) -> bytes:
        out: list[bytes] = []
        self._head(out)
        failure = _error(int(error.get("code") or 500), str(error.get("message") or ""))
        response = self.skin.response(
            self.ctx,
            status="failed",
            output=self.output,
            usage=responses_usage(usage) if usage is not None else None,
            error={"code": failure["code"], "message": failure["message"]},
        )
        self._event(out, "response.failed", response=response)
        return b"".join(out)
