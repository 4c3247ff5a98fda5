"""Is a model server ready? `/v1/models` lists the model, and one tiny real completion comes back.

A health check alone passes long before a broken build crashes on its first token.
"""

from __future__ import annotations

import signal

import httpx

from costguard.errors import ModelServerError

ADVICE = (
    "what to do: rebuild the embedded model server for this machine (`make setup`; see the README's "
    "'The embedded model' section), or point OPENAI_BASE_URL (and COSTGUARD_MODEL) at another OpenAI-compatible server"
)
PROBE_PROMPT = "Reply with the single word OK."
PROBE_MAX_TOKENS = 4
DEFAULT_PROBE_TIMEOUT_S = 120.0


def describe_exit(code: int) -> str:
    """`killed by signal SIGSEGV (exit code -11)` or `exited with code 2`."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by signal {name} (exit code {code})"
    return f"exited with code {code}"


def probe_completion(base_url: str, model: str, timeout_s: float = DEFAULT_PROBE_TIMEOUT_S) -> str:
    """One tiny real chat completion; its text. A server that is up but cannot answer is not ready.

    Raises ModelServerError when the request fails or the answer is not an OpenAI chat completion.
    """
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROBE_PROMPT}],
        "max_tokens": PROBE_MAX_TOKENS,
        "temperature": 0,
    }
    try:
        reply = httpx.post(f"{base_url.rstrip('/')}/chat/completions", json=body, timeout=timeout_s, trust_env=False)
    except httpx.HTTPError as exc:
        raise ModelServerError(f"no answer to a test completion from {base_url}: {type(exc).__name__}: {exc}") from exc
    if reply.status_code != 200:
        raise ModelServerError(
            f"a test completion from {base_url} failed with HTTP {reply.status_code}: {reply.text[:300]}"
        )
    try:
        content = reply.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelServerError(
            f"a test completion from {base_url} is not an OpenAI chat completion: {reply.text[:300]!r}"
        ) from exc
    if not isinstance(content, str):
        raise ModelServerError(f"a test completion from {base_url} has no text: {reply.text[:300]!r}")
    return content


def is_healthy(base_url: str, model: str | None = None, timeout_s: float = 2.0) -> bool:
    """True when `GET {base_url}/models` answers 200 (and lists `model`, when given).

    Proxy variables are ignored: the health of a loopback server must not go through a proxy.
    """
    try:
        reply = httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout_s, trust_env=False)
    except httpx.HTTPError:
        return False
    if reply.status_code != 200:
        return False
    if model is None:
        return True
    try:
        ids = {str(item.get("id")) for item in reply.json().get("data", [])}
    except (ValueError, AttributeError, TypeError):
        return False
    return model in ids
