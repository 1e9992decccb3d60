// Official clients, unmodified, against a running `sirocco serve` (base URL from SIROCCO_URL, default
// http://127.0.0.1:8787): the Cloudflare TypeScript SDK v7 (which percent-encodes the model name in /ai/run), its
// catalog iterator and schema call, its error classes, and the OpenAI JS SDK streamed and not. .ci/run starts the
// server over a tiny synthetic model, runs this, and counts each check in its summary.

import Cloudflare from "cloudflare";
import OpenAI from "openai";

const base = process.env.SIROCCO_URL ?? "http://127.0.0.1:8787";
const account_id = "ci-account";
const cloudflare = new Cloudflare({ apiToken: "unused", baseURL: `${base}/client/v4`, maxRetries: 0 });
const lora = "@cf/mistral/mistral-7b-instruct-v0.2-lora";
const hf = "@hf/mistral/mistral-7b-instruct-v0.2";
let passed = 0;
let failed = 0;

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

async function check(name: string, body: () => Promise<void>) {
  try {
    await body();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${(e as Error).message}`);
  }
}

await check("cloudflare ai.run with messages returns result.response and usage", async () => {
  const result = (await cloudflare.ai.run(lora, {
    account_id,
    messages: [
      { role: "system", content: "You are a friendly assistant" },
      { role: "user", content: "What is the origin of the phrase Hello, World" },
    ],
    max_tokens: 8,
  })) as { response: string; usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } };
  assert(typeof result.response === "string", `response is ${typeof result.response}`);
  assert(result.usage.total_tokens === result.usage.prompt_tokens + result.usage.completion_tokens, "usage does not add up");
});

await check("cloudflare ai.run is deterministic with a seed", async () => {
  const run = () => cloudflare.ai.run(hf, { account_id, prompt: "Tell me a joke", seed: 42, temperature: 1.2, max_tokens: 12 }) as Promise<{ response: string }>;
  const [a, b] = [await run(), await run()];
  assert(a.response === b.response, "two runs with the same seed differ");
});

await check("cloudflare ai.run streams SSE through asResponse()", async () => {
  const response = await cloudflare.ai.run(hf, { account_id, prompt: "Count to five", stream: true, max_tokens: 6 }).asResponse();
  assert(response.headers.get("content-type")?.startsWith("text/event-stream"), `content-type ${response.headers.get("content-type")}`);
  const events = (await response.text()).split("\n\n").filter((e) => e.length > 0);
  assert(events.at(-1) === "data: [DONE]", `last event ${events.at(-1)}`);
  const usage = JSON.parse(events.at(-2)!.slice(6));
  assert(usage.response === "" && usage.usage.completion_tokens >= 1, `usage event ${events.at(-2)}`);
  for (const event of events.slice(0, -2)) assert(typeof JSON.parse(event.slice(6)).response === "string", `event ${event}`);
});

await check("cloudflare models.list pages to the end and stops", async () => {
  const names: string[] = [];
  for await (const model of cloudflare.ai.models.list({ account_id, per_page: 1 })) names.push((model as { name: string }).name);
  assert(names.length === 2 && names.includes(lora) && names.includes(hf), `listed ${JSON.stringify(names)}`);
});

await check("cloudflare models.schema.get returns input and output", async () => {
  const schema = (await cloudflare.ai.models.schema.get({ account_id, model: hf })) as { input: { oneOf: unknown[] }; output: unknown };
  assert(schema.input.oneOf.length === 2 && schema.output !== undefined, "schema shape");
});

await check("cloudflare raises BadRequestError with code 5006 for a bad field", async () => {
  try {
    await cloudflare.ai.run(lora, { account_id, prompt: "hi", temperature: 9 } as never);
    throw new Error("no error raised");
  } catch (e) {
    assert(e instanceof Cloudflare.BadRequestError, `raised ${(e as Error).constructor.name}`);
    const errors = (e as { errors: { code: number; message: string }[] }).errors;
    assert(errors[0].code === 5006 && errors[0].message.includes("temperature"), JSON.stringify(errors));
  }
});

const openai = new OpenAI({ apiKey: "unused", baseURL: `${base}/client/v4/accounts/${account_id}/ai/v1`, maxRetries: 0 });

await check("openai chat.completions, streamed and not, give the same greedy text", async () => {
  const request = { model: hf, messages: [{ role: "user" as const, content: "Name three colours" }], max_tokens: 10, temperature: 0 };
  const whole = await openai.chat.completions.create(request);
  let streamed = "";
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of await openai.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } })) {
    streamed += chunk.choices[0]?.delta?.content ?? "";
    usage ??= chunk.usage ?? undefined;
  }
  assert(whole.choices[0].message.content === streamed, `${JSON.stringify(whole.choices[0].message.content)} vs ${JSON.stringify(streamed)}`);
  assert(usage?.total_tokens === whole.usage?.total_tokens, "stream usage differs");
});

await check("openai models.list lists both catalog models", async () => {
  const ids: string[] = [];
  for await (const model of openai.models.list()) ids.push(model.id);
  assert(ids.includes(lora) && ids.includes(hf), JSON.stringify(ids));
});

console.log(`client checks: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
