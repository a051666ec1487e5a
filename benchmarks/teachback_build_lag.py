"""How long a web process's event loop stalls while the teach-back scorer builds its int8 model.

The scorer's model is built the first time a process needs it: when a student starts an explanation
(`ExplanationScorer.load_in_background`, a thread of the ASGI process) unless the process preloaded it. The build
(ONNX export and quantisation of MiniLM) is seconds of work. Done on a thread of the web process, it holds the
interpreter lock for long stretches, and every socket the process serves waits. This script runs an asyncio loop that
wakes every 10 ms, as a Channels consumer's loop does, and reports how late its wake-ups are while the model is built
on a thread, three ways, in one process:

- baseline: the graph built on the thread itself (`int8_encoder._int8_graph`, how the scorer built it before);
- child: `Int8Encoder` with an empty cache folder (the graph is built by a child process, the thread waits for it);
- cached: `Int8Encoder` with the folder the child filled (the graph is read from disk).

    python benchmarks/teachback_build_lag.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference import int8_encoder  # noqa: E402
from inference.retrieval import default_embedder  # noqa: E402

TICK_S = 0.010


async def lag_while(build: Callable[[], object]) -> dict[str, float]:
    """Run `build` on a thread while a loop task sleeps TICK_S at a time; the wake-ups' lateness (ms)."""
    late: list[float] = []
    done = threading.Event()

    def work() -> None:
        try:
            build()
        finally:
            done.set()

    started = time.perf_counter()
    threading.Thread(target=work, daemon=True).start()
    while not done.is_set():
        before = time.perf_counter()
        await asyncio.sleep(TICK_S)
        late.append((time.perf_counter() - before - TICK_S) * 1000)
    late.sort()
    return {"build_s": time.perf_counter() - started, "p50": late[len(late) // 2],
            "p99": late[min(len(late) - 1, int(len(late) * 0.99))], "max": late[-1],
            "stalled_s": sum(x for x in late if x > 50) / 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    model = default_embedder().sentence_transformer()  # loaded, as in a server that has answered TA questions
    transformer, tokenizer = model[0].auto_model, model.tokenizer
    print(f"# {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.runs} runs each, alternating")
    results: dict[str, list[dict[str, float]]] = {"baseline (built on the thread)": [], "child process": [],
                                                  "cached": []}
    with tempfile.TemporaryDirectory(prefix="tutor-lag-") as folder:
        for run in range(args.runs):
            results["baseline (built on the thread)"].append(
                asyncio.run(lag_while(lambda: int8_encoder._int8_graph(transformer, tokenizer))))
            empty = Path(folder) / f"run{run}"
            encoder = partial(int8_encoder.Int8Encoder, model, cache_dir=empty)
            results["child process"].append(asyncio.run(lag_while(encoder)))
            results["cached"].append(asyncio.run(lag_while(encoder)))
    print("| build | wall s | wake-up lateness p50 / p99 / max (ms) | time in stalls over 50 ms (s) |")
    print("|---|---|---|---|")
    base_max = statistics.median(r["max"] for r in results["baseline (built on the thread)"])
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"| {name} | {med['build_s']:.1f} | {med['p50']:.1f} / {med['p99']:.1f} / {med['max']:.1f} "
              f"(max ratio to baseline {med['max'] / base_max:.2f}) | {med['stalled_s']:.2f} |")
    print("(medians over the runs)")


if __name__ == "__main__":
    main()
