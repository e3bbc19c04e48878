"""Commented starter config files for ``offload config init``: the seed guide's three layouts.

* ``local-first``: LM Studio answers; a hosted model is the safety net when it is down or a
  task's quality gate fails.
* ``hosted-first``: a hosted model answers; LM Studio (then the embedded engine) takes over
  when the hosted call fails (outage, rate limit, no key).
* ``local-only``: nothing ever leaves the machine; hosted providers are refused.
"""

from __future__ import annotations

LAYOUTS = ("local-first", "hosted-first", "local-only")

_HEADER = """\
// offload config ({layout}) — JSON5, the same keys OpenClaw uses, so an OpenClaw file
// (~/.openclaw/openclaw.json) also works as is: offload --config ~/.openclaw/openclaw.json ...
// Check it with `offload config check`; see the merged result with `offload config show`.
{{
"""

_PROVIDERS = """\
  models: {
    // "merge" keeps offload's built-in providers (lmstudio, embedded, anthropic, openai,
    // openrouter) under yours; "replace" uses only what is declared here.
    mode: "merge",
    providers: {
      lmstudio: {
        baseUrl: "http://127.0.0.1:1234",   // LM Studio's native REST API (0.4+)
        api: "lmstudio",
        // apiKey: "${LM_API_TOKEN}",       // only if 'Require Authentication' is on
        models: [
          // Optional: declare models to give them a context window and a price.
          // { id: "qwen/qwen3-4b-2507", name: "Qwen3 4B", contextWindow: 32768, maxTokens: 8192,
          //   cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 } },
        ],
      },
      // Any OpenAI-compatible local server (llama.cpp, vLLM, Ollama, LiteLLM):
      // gpu: { baseUrl: "http://192.168.1.20:8000/v1", api: "openai-completions",
      //        models: [{ id: "my-model" }] },
{hosted}    },
  },
"""

_ANTHROPIC = """\
      // Hosted safety net. The key is read from $ANTHROPIC_API_KEY at call time (a built-in
      // default); to name another variable write apiKey: "${MY_VAR}" (then it must be set).
      anthropic: { baseUrl: "https://api.anthropic.com", api: "anthropic-messages" },
"""

_CHAINS = {
    "local-first": """\
  agents: {
    defaults: {
      // LM Studio first ("auto" = the best loaded model for the request), then the embedded
      // engine, then a hosted model as the safety net.
      model: { primary: "lmstudio/auto", fallbacks: ["embedded/auto", "anthropic/claude-sonnet-4-5"] },
      models: { "anthropic/claude-sonnet-4-5": { alias: "Sonnet" } },
    },
  },
""",
    "hosted-first": """\
  agents: {
    defaults: {
      // The hosted model answers; when it fails, local models take over.
      model: { primary: "anthropic/claude-sonnet-4-5", fallbacks: ["lmstudio/auto", "embedded/auto"] },
      models: { "anthropic/claude-sonnet-4-5": { alias: "Sonnet" } },
    },
  },
""",
    "local-only": """\
  agents: {
    defaults: {
      model: { primary: "lmstudio/auto", fallbacks: ["embedded/auto"] },
    },
  },
""",
}

_OFFLOAD = """\
  // offload's own settings (OpenClaw ignores this key).
  offload: {
    localOnly: {local_only},          // true: hosted providers are never contacted
    savings: { baseline: "anthropic/claude-sonnet-4-5" },   // what local calls are priced against
    // embedded: { enabled: true, modelsDir: "~/models" },   // extra *.gguf files for the embedded engine
    // ledger: { storeText: false },                         // keep prompts/answers in the usage ledger
    // tasks: { extract: { model: { primary: "lmstudio/auto", fallbacks: ["anthropic/claude-haiku-4-5"] },
    //                     gate: "checks", onFail: "escalate" } },
    // offload serve: which chain each request takes ("passthrough" = the model the client asked
    // for, forwarded unchanged to the provider that owns it). Client model names win over scenarios.
    gateway: {
      models: { "claude-haiku-4-5": { primary: "lmstudio/auto", fallbacks: ["passthrough"] } },
      scenarios: {
        background: { primary: "lmstudio/auto", fallbacks: [{fallback}] },  // haiku names, Codex subagents
        think: "passthrough",           // thinking / reasoning requested
        longContext: "passthrough",     // prompts over longContextThreshold tokens
        tools: "passthrough",           // requests carrying tools (small local models are weak at them)
        default: "passthrough",
      },
      longContextThreshold: 60000,
      localMaxTokens: 4096,             // max_tokens is clamped to this for local models
    },
  },
}
"""


def starter(layout: str) -> str:
    """The commented JSON5 text for ``layout`` (one of ``LAYOUTS``)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    hosted = "" if layout == "local-only" else _ANTHROPIC
    return (
        _HEADER.format(layout=layout)
        + _PROVIDERS.replace("{hosted}", hosted)
        + _CHAINS[layout]
        + _OFFLOAD.replace("{local_only}", "true" if layout == "local-only" else "false").replace(
            "{fallback}", '"embedded/auto"' if layout == "local-only" else '"passthrough"'
        )
    )
