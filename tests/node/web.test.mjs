// The web search plugin through the Vercel AI SDK provider: the gateway's `url_citation` annotations
// must come out of `generateText` and `streamText` as the AI SDK's `sources`. Run by
// tests/e2e/test_node_sdks.py against a gateway whose search engine is the SearXNG stand-in
// (tests/e2e/websearch.py); it passes the stand-in's pages as WEB_SEARCH_PAGES (JSON: url, title,
// content), besides OPENROUTER_BASE_URL and OPENROUTER_API_KEY.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { generateText, streamText } from "ai";

const baseURL = process.env.OPENROUTER_BASE_URL;
const apiKey = process.env.OPENROUTER_API_KEY;
const pages = JSON.parse(process.env.WEB_SEARCH_PAGES ?? "null");
if (!baseURL || !apiKey || !Array.isArray(pages) || pages.length === 0) {
  throw new Error("OPENROUTER_BASE_URL, OPENROUTER_API_KEY and WEB_SEARCH_PAGES are required");
}

const HELLO = "Hello from the mock provider.";
const QUESTION = "What is new in Django 5.2?";
const provider = createOpenRouter({ apiKey, baseURL });

// The provider turns each `url_citation` into a source (id and url: the page's URL); the snippet and
// the cited span stay in providerMetadata.openrouter. The mock's answer links nothing: span 0..0.
function expectedSources(count) {
  return pages.slice(0, count).map((page) => ({
    type: "source",
    sourceType: "url",
    id: page.url,
    url: page.url,
    title: page.title,
    providerMetadata: { openrouter: { content: page.content, startIndex: 0, endIndex: 0 } },
  }));
}

test("ai-sdk web plugin: generateText returns the search results as sources", async () => {
  const model = provider.chat("mock-openai/ok", { plugins: [{ id: "web", max_results: 2 }] });
  const result = await generateText({ model, prompt: QUESTION });
  assert.equal(result.text, HELLO);
  assert.deepEqual(result.sources, expectedSources(2));
  assert.equal(result.finishReason, "stop");
});

test("ai-sdk web plugin: streamText returns the sources, in the stream and at the end", async () => {
  // Per call, through providerOptions, which the provider merges into the request body.
  const result = streamText({
    model: provider.chat("mock-anthropic/ok"),
    prompt: QUESTION,
    providerOptions: { openrouter: { plugins: [{ id: "web", max_results: 3 }] } },
  });
  let text = "";
  const streamed = [];
  const order = [];
  for await (const part of result.fullStream) {
    if (part.type === "error") throw part.error;
    if (part.type === "text-delta") text += part.text;
    if (part.type === "source") streamed.push(part);
    order.push(part.type);
  }
  assert.equal(text, HELLO);
  assert.deepEqual(streamed, expectedSources(3));
  assert.deepEqual(await result.sources, expectedSources(3));
  // The citations come after the answer text (the gateway sends them once the text is known).
  assert.ok(order.lastIndexOf("text-delta") < order.indexOf("source"), order.join(","));
  assert.equal(await result.finishReason, "stop");
});

test("ai-sdk `:online`: generateText gets every result (the default is 5)", async () => {
  const result = await generateText({ model: provider.chat("mock-gemini/ok:online"), prompt: QUESTION });
  assert.equal(result.text, HELLO);
  assert.deepEqual(result.sources, expectedSources(pages.length));
  assert.equal(result.response.modelId, "mock-gemini/ok"); // the suffix is not part of the answered model
});

test("ai-sdk `:online`: streamText gets the sources", async () => {
  const result = streamText({ model: provider.chat("mock-openai/ok:online"), prompt: QUESTION });
  let text = "";
  for await (const piece of result.textStream) text += piece;
  assert.equal(text, HELLO);
  assert.deepEqual(await result.sources, expectedSources(pages.length));
  assert.equal(await result.finishReason, "stop");
});

test("ai-sdk web plugin: the provider's engine names (`exa`) get this server's engine", async () => {
  // The provider's types offer OpenRouter's engines; the gateway answers with its default one.
  const model = provider.chat("mock-openai/ok", {
    extraBody: { plugins: [{ id: "web", engine: "exa", max_results: 1 }] },
  });
  const result = await generateText({ model, prompt: QUESTION });
  assert.deepEqual(result.sources, expectedSources(1));
});
