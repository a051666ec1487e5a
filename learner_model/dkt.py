"""Deep Knowledge Tracing (Piech et al. 2015): an LSTM over (skill, answer) pairs, the neural baseline.

Each answer enters as one embedding of (skill, correct). The LSTM state after answers 0..t-1 is read out against the
skill asked at t (an embedding of that skill, concatenated, then a small MLP), which is the common modern form of
DKT's "one output per skill" layer and lets the same weights score skills with few answers. With ``items=True`` the
question embedding adds a Rasch term (a scalar difficulty per item times a per-skill direction, as in AKT), which
helps where problem ids exist.

`DKTCell` is the same network one answer at a time, in numpy, for the tutor's online form
(`learner_model/online.py`): the LSTM state (h, c) is carried between answers, so an update is one LSTM step and a
prediction one readout, instead of a replay of the history.

Training, batching and saving live in `learner_model/seqtrain.py` and `learner_model/models.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class DKTConfig:
    n_skills: int  # known skills + 1 spare row (ids 1..n_skills; 0 = padding)
    n_items: int = 1  # known items + 1 spare row; 1 when the model ignores items
    dim: int = 64  # embedding and LSTM width
    dropout: float = 0.2
    items: bool = False  # add Rasch item-difficulty terms to the question embedding


class DKT(nn.Module):
    def __init__(self, cfg: DKTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.answer_emb = nn.Embedding(2 * (cfg.n_skills + 1), d)  # index 2*skill + correct
        self.skill_emb = nn.Embedding(cfg.n_skills + 1, d, padding_idx=0)
        self.lstm = nn.LSTM(d, d, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(1, 1, d))  # learned "no history yet" state
        self.out = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(d, 1))
        if cfg.items:
            self.item_difficulty = nn.Embedding(cfg.n_items + 1, 1, padding_idx=0)  # mu_item
            self.skill_variation = nn.Embedding(cfg.n_skills + 1, d, padding_idx=0)  # d_skill
            self.item_answer_variation = nn.Embedding(2 * (cfg.n_skills + 1), d)  # f_(skill, correct)
            for emb in (self.item_difficulty, self.skill_variation, self.item_answer_variation):
                nn.init.zeros_(emb.weight)

    def forward(self, skill: torch.Tensor, item: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        b, t = skill.shape
        answer_index = 2 * skill + correct.long()  # (B, T)
        question = self.skill_emb(skill)  # (B, T, d)
        answer = self.answer_emb(answer_index)  # (B, T, d)
        if self.cfg.items:
            mu = self.item_difficulty(item)  # (B, T, 1)
            question = question + mu * self.skill_variation(skill)
            answer = answer + mu * self.item_answer_variation(answer_index)
        h, _ = self.lstm(answer)  # (B, T, d): state after answer t
        h_prev = torch.cat([self.h0.expand(b, 1, -1), h[:, :-1]], dim=1)  # (B, T, d): state before answer t
        logit: torch.Tensor = self.out(torch.cat([h_prev, question], dim=-1)).squeeze(-1)  # (B, T)
        if self.cfg.items:
            logit = logit - mu.squeeze(-1)
        return logit


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


class DKTCell:
    """`DKT.forward` one answer at a time (eval mode, float32). Embedding tables are multiplied once by the weights
    that read them, so a step is a row lookup plus one (d, 4d) product and a readout one (d, d) product.

    Indices are the network's: skill 1..n_skills (0 = padding), item 1..n_items. `h` is None before any answer.
    """

    def __init__(self, net: DKT) -> None:
        cfg = net.cfg
        w = {k: v.detach().float().numpy() for k, v in net.state_dict().items()}
        self.dim, self.items = cfg.dim, cfg.items
        d = cfg.dim
        w_ih, w_hh = w["lstm.weight_ih_l0"], w["lstm.weight_hh_l0"]  # (4d, d) each, gates in torch's order i, f, g, o
        bias = w["lstm.bias_ih_l0"] + w["lstm.bias_hh_l0"]  # (4d,)
        self.answer_gates = w["answer_emb.weight"] @ w_ih.T + bias  # (2(S+1), 4d): input part of the gates
        self.hh = np.ascontiguousarray(w_hh.T)  # (d, 4d)
        w1, b1 = w["out.0.weight"], w["out.0.bias"]  # (d, 2d): [h_prev, question] -> hidden
        self.h_hidden = np.ascontiguousarray(w1[:, :d].T)  # (d, d)
        self.question_hidden = w["skill_emb.weight"] @ w1[:, d:].T + b1  # (S+1, d)
        self.w2, self.b2 = w["out.3.weight"][0], float(w["out.3.bias"][0])  # (d,), scalar
        self.h0 = w["h0"].reshape(d)  # (d,) the "no history yet" readout state
        if cfg.items:
            self.mu = w["item_difficulty.weight"][:, 0]  # (I+1,)
            self.answer_variation_gates = w["item_answer_variation.weight"] @ w_ih.T  # (2(S+1), 4d)
            self.skill_variation_hidden = w["skill_variation.weight"] @ w1[:, d:].T  # (S+1, d)

    def step(self, h: np.ndarray | None, c: np.ndarray | None, skill: int, item: int,
             correct: bool) -> tuple[np.ndarray, np.ndarray]:
        """The LSTM state after one more answer; (h, c) = (None, None) before the first."""
        a = 2 * skill + int(correct)
        gates = self.answer_gates[a].copy()  # (4d,)
        if self.items:
            gates += self.mu[item] * self.answer_variation_gates[a]
        if h is not None and c is not None:
            gates += h @ self.hh
        d = self.dim
        sig = _sigmoid(gates)  # the i, f and o gates; g (the third quarter) goes through tanh instead
        i, f, o = sig[:d], sig[d:2 * d], sig[3 * d:]
        c_new = i * np.tanh(gates[2 * d:3 * d]) + (f * c if c is not None else 0.0)
        h_new = o * np.tanh(c_new)
        return h_new.astype(np.float32), c_new.astype(np.float32)

    def logits(self, h: np.ndarray | None, skill: int, items: np.ndarray) -> np.ndarray:
        """(n,) logits of the next answer on one skill, for each of n candidate item indices."""
        base = (self.h0 if h is None else h) @ self.h_hidden + self.question_hidden[skill]  # (d,)
        if not self.items:
            return np.full(len(items), float(np.maximum(base, 0.0) @ self.w2 + self.b2))
        mu = self.mu[items]  # (n,)
        hidden = np.maximum(base + mu[:, None] * self.skill_variation_hidden[skill], 0.0)  # (n, d)
        return np.asarray(hidden @ self.w2 + self.b2 - mu)
