"""Throughput of the embedded LLM endpoint on CPU: short grasp instructions, sequential and concurrent.

    python -m bench.bench_llm --n 12 [--concurrency 1 2 4] [--batching on off] [--max-tokens 32] [--data-root DIR]
    python -m bench.bench_llm --base-url http://HOST/v1 --model NAME   # any running endpoint instead
    afford report docs/results/llm --update BENCHMARKS.md

Starts `transformers serve` over SmolLM2-135M-Instruct (converting it once under <data_root>/models), sends
`--n` one-sentence instruction prompts through the openai client at each concurrency, and writes
docs/results/llm/: instructions/s, mean and p95 latency, completion tokens/s, per concurrency. One warm-up request
runs first so model load and first-call costs are not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OBJECTS = ["mug", "knife", "bottle", "scissors", "hammer", "kettle", "spray bottle", "screwdriver"]
PARTS = ["handle", "body", "cap", "grip", "neck", "lid"]


def prompts(n: int) -> list[str]:
    return [f"Give one short imperative instruction to grasp the {PARTS[i % len(PARTS)]} of a "
            f"{OBJECTS[i % len(OBJECTS)]}." for i in range(n)]


def _ask(client, model: str, prompt: str, max_tokens: int) -> tuple[float, int, str]:
    start = time.perf_counter()
    reply = client.chat.completions.create(model=model, max_tokens=max_tokens, temperature=0.0,
                                           messages=[{"role": "user", "content": prompt}])
    tokens = reply.usage.completion_tokens if reply.usage else 0
    return time.perf_counter() - start, tokens, reply.choices[0].message.content or ""


def run_level(client, model: str, items: list[str], concurrency: int, max_tokens: int) -> dict:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(lambda p: _ask(client, model, p, max_tokens), items))
    wall = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    tokens = sum(r[1] for r in results)
    return {"concurrency": concurrency, "n": len(items), "wall_s": round(wall, 2),
            "instructions_per_s": round(len(items) / wall, 3),
            "mean_latency_s": round(statistics.fmean(latencies), 2),
            "p95_latency_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 2),
            "completion_tokens_per_s": round(tokens / wall, 1),
            "empty_answers": sum(1 for r in results if not r[2].strip()),
            "sample_answer": results[0][2].strip()[:160]}


def bench(base_url: str, model: str, n: int, levels: list[int], max_tokens: int) -> list[dict]:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=os.environ.get("AFFORD_LLM_API_KEY", "unused"),
                           timeout=600, max_retries=0)
    _ask(client, model, "Say hi.", 4)  # warm-up
    return [run_level(client, model, prompts(n), c, max_tokens) for c in levels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=12, help="Prompts per concurrency level.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--data-root", type=Path, default=None, help="Default: the AFFORD_DATA_ROOT setting.")
    parser.add_argument("--base-url", default=None, help="Bench a running endpoint instead of starting one.")
    parser.add_argument("--model", default=None, help="Model name for --base-url.")
    parser.add_argument("--batching", nargs="+", choices=["on", "off"], default=["on", "off"],
                        help="Serve with continuous batching on and/or off (the embedded endpoint only).")
    parser.add_argument("--results", type=Path, default=None,
                        help="Folder for result.json/result.md (default: docs/results/llm).")
    args = parser.parse_args()
    from bench.record import bench_table, finish, load_text, started

    header = started("llm", seed=None)
    report = {"n": args.n, "max_tokens": args.max_tokens, "cpu_count": os.cpu_count()}
    if args.base_url:
        report.update(endpoint=args.base_url, model=args.model,
                      levels=bench(args.base_url, args.model, args.n, args.concurrency, args.max_tokens))
    else:
        from tasks.instruct.endpoint import ensure_model_dir, start_endpoint, stop_endpoint

        if args.data_root is None:
            from schemas.settings import AffordSettings

            args.data_root = AffordSettings().data_root
        start = time.perf_counter()
        model_dir = ensure_model_dir(args.data_root)
        report["convert_or_reuse_s"] = round(time.perf_counter() - start, 1)
        report["levels"] = []
        for batching in args.batching:  # one server at a time, so they never share the cores
            start = time.perf_counter()
            endpoint = start_endpoint(model_dir, continuous_batching=batching == "on")
            report["server_start_s"] = round(time.perf_counter() - start, 1)
            try:
                report.update(endpoint="embedded transformers serve", model=Path(endpoint.model).name)
                report["levels"] += [level | {"batching": batching} for level in
                                     bench(endpoint.base_url, endpoint.model, args.n, args.concurrency,
                                           args.max_tokens)]
            finally:
                stop_endpoint(endpoint)
    print(json.dumps(report, indent=2))
    rows = [[level.get("batching", "n/a"), level["concurrency"], level["instructions_per_s"],
             level["mean_latency_s"], level["p95_latency_s"], level["completion_tokens_per_s"],
             level["empty_answers"]] for level in report["levels"]]
    start_words = (f" The model folder was ready in {report['convert_or_reuse_s']:.0f} s (converted from the GGUF "
                   f"the first time, reused after) and the server answered its first request "
                   f"{report['server_start_s']:.0f} s after start." if "server_start_s" in report else "")
    text = [f"{report['endpoint']} ({report['model']}), {args.n} one-sentence instruction prompts per level, "
            f"temperature 0, at most {args.max_tokens} tokens each, after one warm-up request.{start_words} "
            f"The first answer: \"{report['levels'][0]['sample_answer']}\"; {load_text()}."]
    table = bench_table(["continuous batching", "concurrency", "answers/s", "mean latency s", "p95 latency s",
                         "completion tokens/s", "empty answers"], rows, ["", "d", ".3f", ".1f", ".1f", ".1f", "d"])
    finish(header, "llm", "Embedded LLM endpoint (instructions)", text, [table], out=args.results)


if __name__ == "__main__":
    main()
