"""Training and prediction for the torch sequence models (DKT, AKT): padding, batching, early stopping.

A sequence model here maps padded tensors of one batch of answer windows to logits:
    model(skill (B, T), item (B, T), correct (B, T)) -> (B, T) logits,
where logit[:, t] predicts correct[:, t] from answers 0..t-1 and the question asked at t (never its answer).
Id 0 is padding; known skills/items are 1..n, the spare row n+1 takes ids unseen in training.

This module owns the loop (seeded, time-boxed, early-stopped on a validation set of other students) so that the
model files hold only the architecture.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from learner_model.data import IdMap, Interactions
from learner_model.metrics import auc


@dataclass
class TrainConfig:
    window: int = 200  # longest history the model sees; longer sequences are cut into windows
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    max_epochs: int = 40
    patience: int = 3  # epochs without a better validation AUC before stopping
    max_seconds: float = 600.0  # wall-clock cap on training (CPU budget), checked between batches
    seed: int = 0
    threads: int = 2  # torch intra-op threads; the CI machine has 2 cores
    valid_share: float = 0.1  # students held out of train for early stopping when no valid set is given


@dataclass(frozen=True)
class Padded:
    skill: torch.Tensor  # (W, T) int64, 0 = padding
    item: torch.Tensor  # (W, T) int64
    correct: torch.Tensor  # (W, T) float32
    rows: np.ndarray  # (W, T) row of the log each slot came from, -1 = padding


def pad(log: Interactions, skills: IdMap, items: IdMap, window: int) -> Padded:
    """Cut each student's sequence into windows of `window` answers and pad them into (W, T) tensors."""
    pos = log.position()
    starts = log.sequence_starts()
    seq = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    chunk = pos // window
    key = seq * (int(chunk.max(initial=0)) + 1) + chunk
    new = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else np.zeros(0, bool)
    wid = np.cumsum(new) - 1
    col = pos % window
    n_w = int(wid.max()) + 1 if len(wid) else 0
    t = int(col.max()) + 1 if len(col) else 1
    rows = np.full((n_w, t), -1, np.int64)
    rows[wid, col] = np.arange(len(log))
    skill = np.zeros((n_w, t), np.int64)
    item = np.zeros((n_w, t), np.int64)
    correct = np.zeros((n_w, t), np.float32)
    skill[wid, col] = skills(log.skill) + 1
    item[wid, col] = (items(log.item) + 1) if len(items.known) and log.has_items else 1
    correct[wid, col] = log.correct
    return Padded(torch.as_tensor(skill), torch.as_tensor(item), torch.as_tensor(correct), rows)


def _batches(p: Padded, order: np.ndarray, batch_size: int) -> Iterator[tuple[torch.Tensor, ...]]:
    for a in range(0, len(order), batch_size):
        idx = torch.as_tensor(order[a:a + batch_size])
        lengths = (p.rows[idx.numpy()] >= 0).sum(1)
        t = int(lengths.max())  # trim the batch to its longest window
        yield p.skill[idx, :t], p.item[idx, :t], p.correct[idx, :t], idx


def _length_buckets(p: Padded, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Shuffle, then sort within chunks of 50 batches by length: little padding, still random batches."""
    lengths = (p.rows >= 0).sum(1)
    order = rng.permutation(len(lengths))
    chunk = 50 * batch_size
    parts = [c[np.argsort(-lengths[c], kind="stable")] for c in np.array_split(order, max(1, len(order) // chunk))]
    batches = [b for part in parts for b in np.array_split(part, max(1, int(np.ceil(len(part) / batch_size))))]
    rng.shuffle(batches)
    return np.concatenate(batches) if batches else order


def predict_padded(model: torch.nn.Module, p: Padded, batch_size: int = 128) -> np.ndarray:
    """P(correct) per row of the log that `p` was padded from."""
    model.eval()
    n_rows = int(p.rows.max()) + 1 if p.rows.size else 0
    out = np.empty(n_rows)
    lengths = (p.rows >= 0).sum(1)
    order = np.argsort(-lengths, kind="stable")
    with torch.no_grad():
        for skill, item, correct, idx in _batches(p, order, batch_size):
            prob = torch.sigmoid(model(skill, item, correct)).numpy()  # (b, t)
            rows = p.rows[idx.numpy(), : prob.shape[1]]
            mask = rows >= 0
            out[rows[mask]] = prob[mask]
    return out


def split_valid(train: Interactions, share: float, seed: int) -> tuple[Interactions, Interactions]:
    """Hold out `share` of the training students (by id, seeded) for early stopping."""
    students = np.unique(train.student)
    rng = np.random.default_rng(seed)
    held = rng.choice(students, size=max(1, int(len(students) * share)), replace=False)
    mask = np.isin(train.student, held)
    return train.select_students(~mask), train.select_students(mask)


def train_model(model: torch.nn.Module, train: Padded, valid: Padded | None, valid_y: np.ndarray | None,
                cfg: TrainConfig, log: Callable[[str], None] = print) -> dict[str, float]:
    """Adam on the masked BCE; keeps the weights of the best validation AUC. Returns a small training report."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best_auc, best_state, bad_epochs, epoch = -1.0, None, 0, 0
    started = time.perf_counter()
    out_of_time = False
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        total, count = 0.0, 0
        for skill, item, correct, _ in _batches(train, _length_buckets(train, cfg.batch_size, rng), cfg.batch_size):
            mask = skill > 0
            logits = model(skill, item, correct)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], correct[mask])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * int(mask.sum())
            count += int(mask.sum())
            if time.perf_counter() - started > cfg.max_seconds:
                out_of_time = True
                break
        if valid is None or valid_y is None:
            log(f"epoch {epoch}: train loss {total / max(count, 1):.4f}")
            if out_of_time:
                break
            continue
        v_auc = auc(valid_y, predict_padded(model, valid))
        log(f"epoch {epoch}: train loss {total / max(count, 1):.4f}  valid AUC {v_auc:.4f}  "
            f"{time.perf_counter() - started:.0f}s")
        if v_auc > best_auc:
            best_auc, bad_epochs = v_auc, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        if bad_epochs >= cfg.patience or out_of_time:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"epochs": epoch, "valid_auc": best_auc, "seconds": time.perf_counter() - started}


ARCHITECTURES = ("dkt", "dkt-rasch", "akt")


class SequenceKTModel:
    """A torch sequence model (DKT or AKT) with its id maps, behind the same fit/predict interface as BKT."""

    early_stops = True  # fit(train, valid): stops on the validation students

    def __init__(self, arch: str, *, train_config: TrainConfig | None = None, dim: int = 64,
                 name: str | None = None) -> None:
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown sequence architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
        self.arch, self.dim = arch, dim
        self.name = name or arch
        self.train_config = train_config or TrainConfig()
        self.skills = IdMap(np.zeros(0, np.int64))
        self.items = IdMap(np.zeros(0, np.int64))
        self.net: torch.nn.Module | None = None
        self.report: dict[str, float] = {}

    def _build(self) -> torch.nn.Module:
        from learner_model.akt import AKT, AKTConfig
        from learner_model.dkt import DKT, DKTConfig

        n_items = self.items.size if len(self.items.known) else 1
        if self.arch == "akt":
            return AKT(AKTConfig(n_skills=self.skills.size, n_items=n_items, dim=self.dim))
        return DKT(DKTConfig(n_skills=self.skills.size, n_items=n_items, dim=self.dim, items=self.arch == "dkt-rasch"))

    def fit(self, train: Interactions, valid: Interactions | None = None,
            log: Callable[[str], None] = print) -> SequenceKTModel:
        cfg = self.train_config
        torch.set_num_threads(cfg.threads)
        if valid is None:
            train, valid = split_valid(train, cfg.valid_share, cfg.seed)
        self.skills = IdMap.fit(train.skill)
        use_items = self.arch != "dkt" and train.has_items
        self.items = IdMap.fit(train.item) if use_items else IdMap(np.zeros(0, np.int64))
        torch.manual_seed(cfg.seed)
        self.net = self._build()
        tp = pad(train, self.skills, self.items, cfg.window)
        vp = pad(valid, self.skills, self.items, cfg.window)
        self.report = train_model(self.net, tp, vp, valid.correct.astype(float), cfg, log)
        return self

    def predict(self, log: Interactions) -> np.ndarray:
        if self.net is None:
            raise RuntimeError("SequenceKTModel.predict before fit")
        return predict_padded(self.net, pad(log, self.skills, self.items, self.train_config.window))

    def state(self) -> dict[str, object]:
        if self.net is None:
            raise RuntimeError("SequenceKTModel.state before fit")
        return {"arch": self.arch, "dim": self.dim, "window": self.train_config.window,
                "skills": self.skills.to_list(), "items": self.items.to_list(),
                "weights": {k: v.detach().clone() for k, v in self.net.state_dict().items()}}

    def load_state(self, state: dict[str, object]) -> None:
        self.arch, self.dim = str(state["arch"]), int(state["dim"])  # type: ignore[call-overload]
        self.train_config.window = int(state["window"])  # type: ignore[call-overload]
        self.skills = IdMap.from_list(list(state["skills"]))  # type: ignore[call-overload]
        self.items = IdMap.from_list(list(state["items"]))  # type: ignore[call-overload]
        self.net = self._build()
        self.net.load_state_dict(state["weights"])  # type: ignore[arg-type]
        self.net.eval()
