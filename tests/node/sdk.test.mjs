// OpenRouter's TypeScript SDK (zod-validated responses) and the Vercel AI SDK provider against the
// live gateway. Run by tests/e2e/test_node_sdks.py, which starts the gateway in front of the mock
// provider and passes OPENROUTER_BASE_URL (…/api/v1) and OPENROUTER_API_KEY.
import assert from "node:assert/strict";
import { test } from "node:test";

import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { OpenRouter } from "@openrouter/sdk";
import { generateObject, generateText, jsonSchema, streamText, tool } from "ai";
import { z } from "zod";

const baseURL = process.env.OPENROUTER_BASE_URL;
const apiKey = process.env.OPENROUTER_API_KEY;
if (!baseURL || !apiKey) throw new Error("OPENROUTER_BASE_URL and OPENROUTER_API_KEY are required");

const HELLO = "Hello from the mock provider.";
const sdk = new OpenRouter({ apiKey, serverURL: baseURL });
const provider = createOpenRouter({ apiKey, baseURL });
const messages = [{ role: "user", content: "Say hello" }];

async function settledGeneration(id) {
  // The gateway queues usage; settlement records it within about a second (404 until then).
  for (let i = 0; i < 60; i++) {
    try {
      return await sdk.generations.getGeneration({ id });
    } catch (err) {
      if (err?.statusCode !== 404) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`generation ${id} was never recorded`);
}

test("@openrouter/sdk chat.send parses, cost_details included", async () => {
  const res = await sdk.chat.send({ chatRequest: { model: "mock-openai/ok", messages } });
  assert.equal(res.choices[0].message.content, HELLO);
  assert.ok(res.usage.cost > 0);
  const d = res.usage.costDetails;
  assert.ok(Math.abs(d.upstreamInferencePromptCost + d.upstreamInferenceCompletionsCost - res.usage.cost) < 1e-12);

  const gen = await settledGeneration(res.id);
  assert.equal(gen.data.id, res.id);
  assert.equal(gen.data.dataRegion, "global");
  assert.equal(gen.data.apiType, "completions");
});

test("@openrouter/sdk chat.send streams, the final chunk has the usage", async () => {
  const stream = await sdk.chat.send({ chatRequest: { model: "mock-anthropic/ok", messages, stream: true } });
  let text = "";
  let usage;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, HELLO);
  assert.ok(usage.costDetails.upstreamInferencePromptCost > 0);
  assert.ok(usage.costDetails.upstreamInferenceCompletionsCost > 0);
});

test("@openrouter/sdk reads models, endpoints and the key", async () => {
  const page = await sdk.models.list();
  const ids = page.result.data.map((m) => m.id);
  assert.ok(ids.includes("mock-gemini/ok"));
  assert.equal(page.result.totalCount, ids.length);

  const endpoints = await sdk.endpoints.list({ author: "mock-gemini", slug: "tools" });
  const [endpoint] = endpoints.data.endpoints;
  assert.equal(endpoint.providerName, "Mock Gemini");
  assert.equal(endpoint.supportsToolChoice.required, true);

  const key = await sdk.apiKeys.getCurrentKeyMetadata();
  assert.deepEqual(key.data.allowedDataRegions, ["global", "europe", "us"]);
  assert.equal(key.data.isManagementKey, false);
});

test("ai-sdk provider: generateText", async () => {
  const { text, usage } = await generateText({ model: provider.chat("mock-gemini/ok"), prompt: "Say hello" });
  assert.equal(text, HELLO);
  assert.ok(usage.outputTokens > 0);
});

test("ai-sdk provider: streamText", async () => {
  const result = streamText({ model: provider.chat("mock-openai/ok"), prompt: "Say hello" });
  let text = "";
  for await (const piece of result.textStream) text += piece;
  assert.equal(text, HELLO);
  assert.equal(await result.finishReason, "stop");
});

test("ai-sdk provider: a tool call", async () => {
  const { toolCalls, finishReason } = await generateText({
    model: provider.chat("mock-anthropic/tools"),
    prompt: "Weather in Paris?",
    tools: {
      get_weather: tool({
        description: "Current weather for a city",
        inputSchema: jsonSchema({ type: "object", properties: { location: { type: "string" } } }),
      }),
    },
  });
  assert.equal(finishReason, "tool-calls");
  assert.equal(toolCalls[0].toolName, "get_weather");
});

test("ai-sdk provider: a zod tool is executed on the call's arguments", async () => {
  const seen = [];
  const { toolCalls, toolResults, finishReason } = await generateText({
    model: provider.chat("mock-gemini/tools"),
    prompt: "Weather in Paris?",
    tools: {
      get_weather: tool({
        description: "Current weather for a city",
        inputSchema: z.object({ location: z.string(), unit: z.enum(["celsius", "fahrenheit"]).optional() }),
        execute: async (input) => {
          seen.push(input);
          return { temperature: 21 };
        },
      }),
    },
  });
  assert.equal(finishReason, "tool-calls");
  assert.equal(toolCalls[0].toolName, "get_weather");
  assert.deepEqual(toolCalls[0].input, { location: "Paris", unit: "celsius" });
  assert.deepEqual(seen, [toolCalls[0].input]);
  assert.deepEqual(toolResults[0].output, { temperature: 21 });
});

test("ai-sdk provider: generateObject with a zod schema", async () => {
  const { object, finishReason } = await generateObject({
    model: provider.chat("mock-openai/json"),
    schema: z.object({ answer: z.number() }),
    prompt: "What is the answer?",
  });
  assert.deepEqual(object, { answer: 42 });
  assert.equal(finishReason, "stop");
});
