"""A sentence-transformers BERT model (the packaged MiniLM) with int8 linear layers, run by ONNX Runtime.

The teach-back scorer embeds every explanation it scores, on one core, within a time budget; the forward pass is
nearly all of its cost. ONNX Runtime's dynamic int8 quantisation (weights per output channel, activations per
tensor with a zero point) runs MiniLM about 1.6 times faster than torch's dynamic int8 on this project's CPUs, and
its token vectors stay closer to the float model's (cosine about 0.99 against 0.96 for torch's int8); figures in
benchmarks/RESULTS.md (teachback_eval.py --timing).

The ONNX graph is exported from the model's own weights (nothing is downloaded) and quantised by a child process
(`python -m inference.int8_encoder MODEL_DIR OUT`): seconds of work that, on a thread of a web process, held the
interpreter lock and stalled every socket the process served (up to half a second at a time; figures in RESULTS,
teachback_build_lag.py). With a cache folder the graph is kept there, named by a hash of the model's files and of the
libraries that built it, and later processes read it instead of building it.

    encoder = Int8Encoder(sentence_transformer, cache_dir=Path("var/cache"))
    tokens = encoder.token_embeddings(tokenizer(texts, padding=True, return_tensors="np"))  # (B, L, 384)
    vectors = encoder.mean_pooled(tokens, features["attention_mask"])                          # (B, 384)
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
FORMAT = 1  # part of the cache key: raise it when the graph's inputs, outputs or quantisation change
BUILD_TIMEOUT_S = 600
_ROOT = Path(__file__).resolve().parents[1]  # the child runs `-m inference.int8_encoder` from here

log = logging.getLogger(__name__)


class Int8Encoder:
    """The token embeddings of a sentence-transformers model whose first module is a BERT-style transformer and
    whose pooling is the mean over the attention mask (as all-MiniLM-L6-v2's)."""

    def __init__(self, model: Any, threads: int = 1, cache_dir: Path | None = None) -> None:
        pooling = model[1]  # sentence-transformers 5 names the mode; earlier releases had one flag per mode
        if getattr(pooling, "pooling_mode", None) != "mean" and not getattr(pooling, "pooling_mode_mean_tokens", False):
            raise ValueError("Int8Encoder reproduces mean pooling only; this model pools otherwise")
        self.tokenizer = model.tokenizer
        self.max_seq_length: int = model.max_seq_length
        self._session = _session(int8_graph(model[0].auto_model, self.tokenizer, cache_dir), threads)

    def token_embeddings(self, features: dict[str, Any]) -> np.ndarray:
        """(B, L, hidden) float32: the last layer's token vectors of a padded batch (numpy or torch tensors)."""
        feed = {name: np.asarray(features[name], dtype=np.int64) for name in INPUTS}
        output: np.ndarray = self._session.run(None, feed)[0]
        return output

    @staticmethod
    def mean_pooled(tokens: np.ndarray, attention_mask: Any) -> np.ndarray:
        """(B, hidden): the mean of each text's token vectors over its attention mask (the model's pooling)."""
        mask = np.asarray(attention_mask, dtype=np.float32)[:, :, None]
        pooled: np.ndarray = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        return pooled


class _QuantiserNotes(logging.Filter):
    """ONNX Runtime's quantiser notes every tensor it leaves in float, at INFO, through the root logger itself: a
    hundred lines in the service's log at each start. Records of other loggers do not pass a root logger's filters."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname


def int8_graph(transformer: Any, tokenizer: Any, cache_dir: Path | None = None) -> bytes:
    """The int8 graph of `transformer`: from `cache_dir` if built before, else built by a child process from the
    folder the model was loaded from (and kept in `cache_dir`). A model not loaded from a folder is built here."""
    folder = Path(transformer.name_or_path)
    if not (folder / "config.json").is_file():
        return _int8_graph(transformer, tokenizer)
    cached = cache_dir / f"minilm-int8-{_key(folder)}.onnx" if cache_dir is not None else None
    if cached is not None and cached.is_file():
        return cached.read_bytes()
    with tempfile.TemporaryDirectory(prefix="tutor-int8-") as scratch:
        out = Path(scratch) / "int8.onnx"
        done = subprocess.run([sys.executable, "-m", "inference.int8_encoder", str(folder), str(out)],
                              capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=_ROOT,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (
                                  str(_ROOT), os.environ.get("PYTHONPATH"))))})
        if done.returncode != 0:
            raise RuntimeError(f"building the int8 graph of {folder} failed (exit {done.returncode}):\n"
                               f"{done.stderr[-4000:]}")
        graph = out.read_bytes()
    if cached is not None:
        _keep(graph, cached)
    return graph


def _key(folder: Path) -> str:
    """A hash of the model folder's files (weights, configuration, vocabulary) and of the libraries that export and
    quantise it: a changed model or library is a new name in the cache, never a stale graph."""
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    for name in ("torch", "transformers", "onnx", "onnxruntime"):
        digest.update(f"{name} {version(name)}".encode())
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode())
        with path.open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    return digest.hexdigest()[:24]


def _keep(graph: bytes, path: Path) -> None:
    """Write the graph to the cache in one step (a process reading it never sees half a file); a cache that cannot
    be written costs the next process a build, nothing else."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(graph)
        partial.replace(path)
    except OSError as error:
        log.warning("the int8 graph could not be kept in %s (%s): each process will build its own", path.parent, error)


def _int8_graph(transformer: Any, tokenizer: Any) -> bytes:
    """The transformer exported to ONNX (batch and length dynamic) and quantised to int8, as serialised bytes."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids).last_hidden_state

    # Texts of two lengths, so that the trace keeps the padding mask instead of folding it away.
    example = tokenizer(["a text of a few more words than the other", "a short one"], padding=True,
                        return_tensors="pt")
    dynamic = {name: {0: "batch", 1: "length"} for name in (*INPUTS, "tokens")}
    with tempfile.TemporaryDirectory(prefix="tutor-int8-") as folder:
        exported, prepared, quantised = (Path(folder) / name for name in ("float.onnx", "prepared.onnx", "int8.onnx"))
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            # The tracer warns about every shape-dependent branch in transformers' code (it traces one path, the
            # padded one, which is the general one) and torch about its exporter's future; neither is actionable.
            warnings.simplefilter("ignore")
            torch.onnx.export(LastHiddenState().eval(), tuple(example[name] for name in INPUTS), str(exported),
                              input_names=list(INPUTS), output_names=["tokens"], dynamic_axes=dynamic,
                              opset_version=17, dynamo=False)
            # ONNX Runtime's own preparation for quantisation (graph optimisation, shape inference); its symbolic
            # shape inference does not complete on BERT's graph and is not needed for dynamic quantisation.
            quant_pre_process(exported, prepared, skip_symbolic_shape=True)
            notes = _QuantiserNotes()
            logging.getLogger().addFilter(notes)
            try:
                quantize_dynamic(prepared, quantised, per_channel=True, weight_type=QuantType.QInt8)
            finally:
                logging.getLogger().removeFilter(notes)
        return quantised.read_bytes()


def _session(graph: bytes, threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the optimiser's notes on the graph would print every start
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def main(argv: list[str]) -> int:
    """The child process: `python -m inference.int8_encoder MODEL_DIR OUT` writes the int8 graph of the model in
    MODEL_DIR (a transformers folder) to OUT."""
    if len(argv) != 2:
        print("usage: python -m inference.int8_encoder MODEL_DIR OUT", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are in the folder; never the network
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(1)  # it runs beside a web process's work; one core is enough for seconds of it
    folder, out = Path(argv[0]), Path(argv[1])
    out.write_bytes(_int8_graph(AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
