"""The file-parser plugin: PDFs read as text for models that cannot read them, passed natively to those
that can, returned as `file` annotations that spare a second parse when sent back.

Unit tests on the pure parts, then the round trip through the gateway (in process, the mock provider
behind it, real PostgreSQL and Redis): what reached the upstream is read from `mock_provider.requests`.
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
from pytest_django.fixtures import Settings

from billing.ledger import org_balance_nanos
from billing.models import Generation
from proxy.catalog.snapshot import catalog_bump_version
from proxy.models import Model
from proxy.plugins import file_parser
from proxy.plugins.file_parser import FileParserError, FileParsing, engine_for, file_parsing_for, parse_pdf
from tests.e2e.support import World, _mock_server, mock_provider, provider_env, settle_usage, world
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import PATH, asgi_client, stream

__all__ = ["_mock_server", "mock_provider", "world"]

MODEL = "mock-openai/ok"  # input modalities: text only


def make_pdf(*pages: str) -> bytes:
    """A real PDF, one Helvetica text line per page."""
    writer = PdfWriter()
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        fonts = DictionaryObject({NameObject("/F1"): writer._add_object(font)})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        content = DecodedStreamObject()
        content.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
        page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


PDF = make_pdf("The launch code is 4417", "Page two says goodbye")
PDF_B64 = base64.b64encode(PDF).decode()


def pdf_part(data: str = PDF_B64, name: str = "report.pdf") -> dict[str, Any]:
    return {"type": "file", "file": {"filename": name, "file_data": f"data:application/pdf;base64,{data}"}}


def ask_about(part: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is the launch code?"}, part]}]


# --- pure parts ---------------------------------------------------------------------------------------


def test_it_extracts_the_text_of_every_page() -> None:
    assert parse_pdf(PDF_B64, 1 << 20) == "The launch code is 4417\n\nPage two says goodbye"


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        (base64.b64encode(b"%PDF-1.4 this is not really a pdf").decode(), 400),
        ("not base64 at all!", 400),
        (base64.b64encode(b"x" * 5000).decode(), 413),
    ],
)
def test_a_bad_or_oversized_file_is_a_clear_client_error(payload: str, status: int) -> None:
    with pytest.raises(FileParserError) as raised:
        parse_pdf(payload, 4096)
    assert raised.value.status == status


def test_engines() -> None:
    assert engine_for([]) is None
    assert engine_for([{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]) == "pdf-text"
    assert engine_for([{"id": "file-parser", "pdf": {"engine": "native"}}]) == "native"
    with pytest.raises(FileParserError, match="not available on this deployment"):
        engine_for([{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}])
    with pytest.raises(FileParserError, match="must be"):
        engine_for([{"id": "file-parser", "pdf": {"engine": "tesseract"}}])
    with pytest.raises(FileParserError, match="must be"):
        engine_for([{"id": "file-parser", "pdf": {"engine": ["native"]}}])
    with pytest.raises(FileParserError, match="must be an object"):
        engine_for([{"id": "file-parser", "pdf": "native"}])


def test_without_a_pdf_there_is_nothing_to_do() -> None:
    url_part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "https://example.com/a.pdf"}}
    assert file_parsing_for([], ask_about(url_part)) is None
    assert file_parsing_for([], [{"role": "user", "content": "hi"}]) is None


def test_native_models_get_the_file_and_the_others_its_text() -> None:
    parsing = file_parsing_for([], ask_about(pdf_part()))
    assert isinstance(parsing, FileParsing)
    assert parsing.native_for(["text", "file"]) and not parsing.native_for(["text", "image"])
    native = asyncio.run(parsing.messages_for(native=True, max_bytes=1 << 20))
    assert native[0]["content"][1]["type"] == "file"
    text = asyncio.run(parsing.messages_for(native=False, max_bytes=1 << 20))
    assert text[0]["content"][1] == {
        "type": "text",
        "text": "[report.pdf]\nThe launch code is 4417\n\nPage two says goodbye",
    }
    # The client's messages are left as sent.
    assert parsing.messages[0]["content"][1]["type"] == "file"
    [note] = parsing.annotations
    assert note["type"] == "file" and note["file"]["name"] == "report.pdf"
    assert note["file"]["content"] == [{"type": "text", "text": "The launch code is 4417\n\nPage two says goodbye"}]


# --- through the gateway ------------------------------------------------------------------------------


@pytest.fixture
def live(world: World, mock_provider: MockProvider, settings: Settings) -> World:
    settings.PROVIDER_ENV = provider_env(world, mock_provider)
    return world


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every PDF the gateway parses (file_parser.parse_pdf, counted)."""
    seen: list[str] = []
    real = file_parser.parse_pdf

    def counting(payload: str, max_bytes: int) -> str:
        seen.append(payload)
        return real(payload, max_bytes)

    monkeypatch.setattr(file_parser, "parse_pdf", counting)
    return seen


def post(world: World, *bodies: dict[str, Any]) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with asgi_client(world.key.key) as client:
            return [await client.post(PATH, json={"model": MODEL, "max_tokens": 16, **body}) for body in bodies]

    return asyncio.run(main())


def upstream_texts(mock: MockProvider) -> list[str]:
    """The text each upstream request's last user message carried (parts joined)."""
    out = []
    for rec in mock.requests:
        content = rec.body["messages"][-1]["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        out.append("\n".join(p.get("text", f"<{p['type']}>") for p in parts))
    return out


def test_a_pdf_round_trip_is_parsed_once(live: World, mock_provider: MockProvider, parses: list[str]) -> None:
    messages = ask_about(pdf_part())
    [first] = post(live, {"messages": messages, "plugins": [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]})
    assert first.status_code == 200, first.text
    # The model cannot read PDFs: it got the text, not the file.
    assert "The launch code is 4417" in upstream_texts(mock_provider)[0]
    assert "<file>" not in upstream_texts(mock_provider)[0]
    answer = first.json()["choices"][0]["message"]
    [note] = answer["annotations"]
    assert note["type"] == "file" and note["file"]["name"] == "report.pdf" and len(note["file"]["hash"]) == 64
    assert "4417" in note["file"]["content"][0]["text"]
    assert len(parses) == 1

    # The client sends the conversation back, the assistant message with its annotations.
    follow_up = [*messages, answer, {"role": "user", "content": "And on page two?"}]
    [second] = post(live, {"messages": follow_up})
    assert second.status_code == 200, second.text
    assert len(parses) == 1  # not parsed again
    sent = mock_provider.requests[1].body["messages"]
    assert "The launch code is 4417" in sent[0]["content"][1]["text"]
    assert all("annotations" not in m for m in sent)  # ours, never forwarded upstream
    assert "annotations" not in second.json()["choices"][0]["message"]
    # Text extraction is free: each turn is billed its tokens, no parsing charge.
    settle_usage()
    costs = list(Generation.objects.filter(organization=live.org).values_list("cost_nanos", "list_cost_nanos"))
    assert len(costs) == 2
    assert all(cost == usage for cost, usage in costs), costs


def test_a_model_that_reads_pdfs_gets_the_file(live: World, mock_provider: MockProvider, parses: list[str]) -> None:
    Model.objects.filter(slug=MODEL).update(input_modalities=["text", "file"])
    catalog_bump_version()
    native, forced_text = post(
        live,
        {"messages": ask_about(pdf_part())},
        {"messages": ask_about(pdf_part()), "plugins": [{"id": "file-parser", "pdf": {"engine": "pdf-text"}}]},
    )
    assert native.status_code == forced_text.status_code == 200
    assert upstream_texts(mock_provider)[0].endswith("<file>")
    assert "annotations" not in native.json()["choices"][0]["message"]
    assert "The launch code is 4417" in upstream_texts(mock_provider)[1]
    assert forced_text.json()["choices"][0]["message"]["annotations"][0]["type"] == "file"
    assert len(parses) == 1


def test_by_default_a_text_model_gets_the_text(live: World, mock_provider: MockProvider) -> None:
    [response] = post(live, {"messages": ask_about(pdf_part())})
    assert response.status_code == 200, response.text
    assert "The launch code is 4417" in upstream_texts(mock_provider)[0]


def test_the_annotations_stream_too(live: World, mock_provider: MockProvider) -> None:
    async def main() -> Any:
        async with asgi_client(live.key.key) as client:
            return await stream(client, {"model": MODEL, "max_tokens": 16, "messages": ask_about(pdf_part())})

    response, events = asyncio.run(main())
    assert response.status_code == 200, response.text
    notes = [
        note
        for event in events.data()
        for choice in event.get("choices") or ()
        for note in (choice.get("delta") or {}).get("annotations") or ()
    ]
    assert [n["file"]["name"] for n in notes] == ["report.pdf"]
    assert "The launch code is 4417" in upstream_texts(mock_provider)[0]


@pytest.mark.parametrize(
    ("part", "plugins", "status", "says"),
    [
        (pdf_part(base64.b64encode(b"%PDF-1.7 garbage").decode()), [], 400, "could not be parsed"),
        (pdf_part(), [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}], 400, "mistral-ocr"),
        (pdf_part(base64.b64encode(b"%PDF" + b"x" * 4096).decode()), [], 413, "larger than"),
    ],
)
def test_a_file_the_gateway_cannot_use_is_refused_and_moves_no_credit(
    live: World, mock_provider: MockProvider, settings: Settings, part: Any, plugins: Any, status: int, says: str
) -> None:
    settings.FILE_PARSER_MAX_BYTES = 2048
    before = org_balance_nanos(live.org)
    [response] = post(live, {"messages": ask_about(part), "plugins": plugins})
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]
    assert mock_provider.requests == []
    settle_usage()
    assert not Generation.objects.filter(organization=live.org).exists()
    assert org_balance_nanos(live.org) == before
