"""Deep Knowledge Tracing (Piech et al. 2015): an LSTM over (skill, answer) pairs, the neural baseline.

Each answer enters as one embedding of (skill, correct). The LSTM state after answers 0..t-1 is read out against the
skill asked at t (an embedding of that skill, concatenated, then a small MLP), which is the common modern form of
DKT's "one output per skill" layer and lets the same weights score skills with few answers. With ``items=True`` the
question embedding adds a Rasch term (a scalar difficulty per item times a per-skill direction, as in AKT), which
helps where problem ids exist.

Training, batching and saving live in `learner_model/seqtrain.py` and `learner_model/models.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
