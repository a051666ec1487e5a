"""The `transformers` backend: a local Hugging Face model directory, run in this process.

GPU when one is present (bf16), CPU otherwise (fp32). Generation runs in a worker thread and is
streamed with `TextIteratorStreamer`; a stopping criterion watches the request's cancel event, so a
student who leaves stops the model at the next token. Nothing is ever downloaded: the directory must
hold the weights and the tokenizer (`local_files_only`). One generation at a time per model: on a
single device concurrent `generate` calls only contend, and sampling seeds are process-global.

Structured output (`json_schema`) is not enforced here; callers verify what comes back anyway.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from inference.base import BackendUnavailable, GenerationRequest


@dataclass
class _Loaded:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    lock: threading.Lock


_loaded: dict[tuple[str, str, str], _Loaded] = {}
_loaded_lock = threading.Lock()


def _load(path: str, device: str, dtype: str) -> _Loaded:
    key = (path, device, dtype)
    with _loaded_lock:
        if key not in _loaded:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=getattr(torch, dtype))
            model.to(device).eval()  # type: ignore[arg-type]
            _loaded[key] = _Loaded(model, tokenizer, torch.device(device), threading.Lock())
        return _loaded[key]


class _Cancelled(StoppingCriteria):
    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        # (B,): one flag per sequence; all stop together.
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class TransformersBackend:
    name = "transformers"

    def __init__(self, path: str | Path, device: str | None = None, dtype: str | None = None,
                 max_input_tokens: int = 4096, chunk_timeout_s: float = 120.0) -> None:
        directory = Path(path)
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"{directory} is not a Hugging Face model directory (no config.json)")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
        self.max_input_tokens = max_input_tokens
        self.chunk_timeout_s = chunk_timeout_s
        self._loaded = _load(str(directory.resolve()), device, dtype)

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self._loaded.tokenizer

    def stream(self, request: GenerationRequest) -> Iterator[str]:
        loaded = self._loaded
        inputs = self._encode(request)
        stop = threading.Event()
        streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True,
                                        timeout=self.chunk_timeout_s)
        sampling: dict[str, Any] = {"do_sample": False}
        if request.temperature > 0:
            sampling = {"do_sample": True, "temperature": request.temperature, "top_p": 1.0}
        failure: list[BaseException] = []

        def run() -> None:
            with loaded.lock:
                if request.cancelled() or stop.is_set():
                    streamer.end()  # type: ignore[no-untyped-call]
                    return
                if request.temperature > 0 and request.seed is not None:
                    torch.manual_seed(request.seed)
                criteria = [_Cancelled(stop)] + ([_Cancelled(request.cancel)] if request.cancel else [])
                try:
                    with torch.inference_mode():
                        loaded.model.generate(  # type: ignore[operator]
                            **inputs, max_new_tokens=request.max_tokens, streamer=streamer,
                            stopping_criteria=StoppingCriteriaList(criteria),
                            pad_token_id=loaded.tokenizer.pad_token_id or loaded.tokenizer.eos_token_id,
                            **sampling)
                except (RuntimeError, ValueError) as exc:  # CUDA OOM, bad input: reported to the consumer
                    failure.append(exc)
                    streamer.end()  # type: ignore[no-untyped-call]

        threading.Thread(target=run, name="transformers-generate", daemon=True).start()
        try:
            for text in streamer:
                if request.cancelled():
                    return
                if text:
                    yield text
        except queue.Empty:  # TextIteratorStreamer's timeout
            raise BackendUnavailable(f"transformers: no token for {self.chunk_timeout_s:g} s") from None
        finally:
            stop.set()
        if failure:
            raise BackendUnavailable(f"transformers: generation failed: {failure[0]}") from failure[0]

    def health(self) -> bool:
        return True  # in process: if it loaded, it can serve

    def _encode(self, request: GenerationRequest) -> dict[str, torch.Tensor]:
        tokenizer = self._loaded.tokenizer
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if tokenizer.chat_template:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        encoded = tokenizer(str(text), return_tensors="pt", add_special_tokens=False)
        # Keep the end of an over-long prompt: the question is last.
        return {k: v[:, -self.max_input_tokens:].to(self._loaded.device) for k, v in encoded.items()}
