"""The `file-parser` plugin: PDFs in `file` parts read as text by models that cannot read PDFs.

`{"type": "file", "file": {"filename", "file_data": "data:application/pdf;base64,..."}}` parts go
to a model that lists "file" among its input modalities as they are (its provider reads the PDF and
bills it as input tokens); for any other model the PDF's text, extracted here with pypdf, replaces
the part. `plugins: [{"id": "file-parser", "pdf": {"engine": ...}}]` overrides that choice:
"native" always passes the PDF through, "pdf-text" (and "cloudflare-ai", which OpenRouter
redirects "pdf-text" to) always sends the text. "mistral-ocr" needs an OCR service this deployment
does not run, so asking for it is a 400 rather than a silent fallback to plain text.

Parsed files come back as `file` annotations on the answer's message
(`{"type": "file", "file": {"hash", "name", "content": [{"type": "text", "text"}]}}`, OpenRouter's
shape). A client that sends the assistant message back with its annotations gets the same file
(matched by the SHA-256 of its base64 data) read from the annotation, not parsed again. Text
extraction is free, so there is nothing to bill either way. Only PDFs sent as data URLs are parsed:
a URL or an uploaded `file_id` is passed through (no fetching on the request path).

Extraction is CPU work, so it runs in a worker thread (`asyncio.to_thread`), once per request
whatever the number of attempts; the rest of this module is pure.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PLUGIN_ID = "file-parser"
TEXT_ENGINES = frozenset({"pdf-text", "cloudflare-ai"})
NATIVE_ENGINE = "native"
OCR_ENGINES = frozenset({"mistral-ocr"})
_PDF_PREFIX = "data:application/pdf;base64,"

Message = dict[str, Any]


class FileParserError(ValueError):
    """A file the request carries cannot be used (a 400 or 413 for the client, no credit moved)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class PdfPart:
    """One PDF `file` part: where it sits, its name and its base64 payload."""

    message: int
    part: int
    filename: str
    payload: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.payload.encode("ascii", "replace")).hexdigest()


def engine_for(plugins: Sequence[Mapping[str, Any]]) -> str | None:
    """The requested PDF engine (None: by model), or FileParserError for one we cannot run."""
    engine: str | None = None
    for plugin in plugins:
        if plugin.get("id") != PLUGIN_ID or plugin.get("enabled", True) is False:
            continue
        pdf = plugin.get("pdf")
        if pdf is None:
            continue
        if not isinstance(pdf, Mapping):
            raise FileParserError(400, "plugins[file-parser].pdf must be an object")
        value = pdf.get("engine")
        if value is None:
            continue
        if isinstance(value, str) and value in OCR_ENGINES:
            raise FileParserError(
                400,
                f'The file-parser engine "{value}" is not available on this deployment (no OCR service '
                'is configured); use "pdf-text" or "native"',
            )
        if not isinstance(value, str) or (value not in TEXT_ENGINES and value != NATIVE_ENGINE):
            raise FileParserError(400, 'plugins[file-parser].pdf.engine must be "pdf-text", "mistral-ocr" or "native"')
        engine = value
    return engine


def pdf_parts(messages: Sequence[Message]) -> list[PdfPart]:
    """The PDF data-URL parts of the prompt, in order."""
    found: list[PdfPart] = []
    for i, msg in enumerate(messages):
        content = msg.get("content")
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if not isinstance(part, Mapping) or part.get("type") != "file":
                continue
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, Mapping) else None
            if isinstance(data, str) and data[: len(_PDF_PREFIX)].lower() == _PDF_PREFIX:
                name = file.get("filename") if isinstance(file, Mapping) else None
                found.append(PdfPart(i, j, name if isinstance(name, str) else "document.pdf", data[len(_PDF_PREFIX) :]))
    return found


def known_texts(messages: Sequence[Message]) -> dict[str, str]:
    """Text of files parsed before, from `file` annotations the client sent back on assistant messages."""
    known: dict[str, str] = {}
    for msg in messages:
        annotations = msg.get("annotations") if msg.get("role") == "assistant" else None
        for note in annotations if isinstance(annotations, list) else ():
            file = note.get("file") if isinstance(note, Mapping) and note.get("type") == "file" else None
            if not isinstance(file, Mapping) or not isinstance(file.get("hash"), str):
                continue
            content = file.get("content")
            if isinstance(content, list):
                texts = [c["text"] for c in content if isinstance(c, Mapping) and isinstance(c.get("text"), str)]
                known[file["hash"]] = "\n".join(texts)
    return known


def parse_pdf(payload: str, max_bytes: int) -> str:
    """The text of a base64 PDF, pages separated by blank lines. Raises FileParserError (400/413)."""
    if len(payload) // 4 * 3 > max_bytes:
        raise FileParserError(413, f"A PDF in the request is larger than the file parser's limit of {max_bytes} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FileParserError(400, "A PDF file part's file_data is not valid base64") from exc
    from pypdf import PdfReader  # imported on first use: most processes never parse a PDF
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise FileParserError(400, "A PDF in the request is encrypted and cannot be parsed")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except FileParserError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        # pypdf reports a damaged file through many exception types; each means the same to the client.
        raise FileParserError(400, f"A PDF in the request could not be parsed: {exc}") from exc


def annotation(hash_: str, filename: str, text: str) -> dict[str, Any]:
    """OpenRouter's `file` annotation for a parsed file."""
    return {"type": "file", "file": {"hash": hash_, "name": filename, "content": [{"type": "text", "text": text}]}}


def _without_annotations(messages: Sequence[Message]) -> list[Message]:
    # Annotations are ours: no upstream API accepts them on an input message.
    return [{k: v for k, v in m.items() if k != "annotations"} if "annotations" in m else m for m in messages]


@dataclass(slots=True)
class FileParsing:
    """A request's PDFs: the messages each kind of attempt gets, the text parsed once for all attempts."""

    engine: str | None  # None: native for models that read PDFs, text for the others
    messages: list[Message]  # as the client sent them
    parts: list[PdfPart]
    annotations: list[dict[str, Any]] = field(default_factory=list)  # files parsed by this request
    served_text: bool = False  # the latest attempt got text (its answer carries the annotations)
    _text: list[Message] | None = None

    def native_for(self, model_modalities: Sequence[str]) -> bool:
        if self.engine is not None:
            return self.engine == NATIVE_ENGINE
        return "file" in model_modalities

    async def messages_for(self, *, native: bool, max_bytes: int) -> list[Message]:
        """The messages for one attempt; parsing (in a worker thread) happens on the first text attempt."""
        self.served_text = not native
        if native:
            return _without_annotations(self.messages)
        if self._text is None:
            self._text = await asyncio.to_thread(self._parse_all, max_bytes)
        return self._text

    def _parse_all(self, max_bytes: int) -> list[Message]:
        texts = known_texts(self.messages)
        replaced: dict[tuple[int, int], str] = {}
        for part in self.parts:
            digest = part.hash
            if digest not in texts:
                texts[digest] = parse_pdf(part.payload, max_bytes)
                self.annotations.append(annotation(digest, part.filename, texts[digest]))
            replaced[(part.message, part.part)] = f"[{part.filename}]\n{texts[digest]}"
        out = _without_annotations(self.messages)
        for i in {m for m, _ in replaced}:
            content = [
                {"type": "text", "text": replaced[(i, j)]} if (i, j) in replaced else part
                for j, part in enumerate(out[i]["content"])
            ]
            out[i] = {**out[i], "content": content}
        return out

    def stream_annotations(self) -> list[dict[str, Any]]:
        """The annotations a streamed answer carries: those of the files parsed for it."""
        return list(self.annotations) if self.served_text else []

    def annotate(self, choices: Sequence[dict[str, Any]]) -> None:
        """Add the parsed files' annotations to each answer's message (only when it read the text)."""
        if not self.served_text or not self.annotations:
            return
        for choice in choices:
            message = choice.get("message")
            if isinstance(message, dict):
                message["annotations"] = [*(message.get("annotations") or ()), *self.annotations]


def file_parsing_for(plugins: Sequence[Mapping[str, Any]], messages: list[Message]) -> FileParsing | None:
    """The request's file work, or None when it carries no PDF (raises FileParserError for a bad engine)."""
    engine = engine_for(plugins)
    parts = pdf_parts(messages)
    return FileParsing(engine, messages, parts) if parts else None
