"""Attentive Knowledge Tracing, compact form (after Ghosh, Heffernan & Lan, KDD 2020).

Kept from AKT:
- Rasch embeddings: question x_t = c_skill + mu_item * d_skill, answer y_t = e_(skill, correct) + mu_item * f_(skill,
  correct), with mu_item one learned scalar difficulty per problem (the whole item table is I scalars, so 17k problems
  cost nothing and rare ones shrink to their skill).
- Three attention blocks: a question encoder (x attends to x_<=t), a knowledge encoder (y attends to y_<=t) and a
  knowledge retriever (the question at t attends, with keys from the question stream, to the knowledge at < t).
- Monotonic attention: every head's scores are lowered by a learned, non-negative rate times the distance in steps,
  so older answers weigh less unless the content says otherwise. (AKT's context-aware distance is replaced by this
  plain exponential decay, which costs nothing on CPU.)
Output: MLP([retrieved knowledge, x_t]) -> logit, minus the item's difficulty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class AKTConfig:
    n_skills: int  # known skills + 1 spare row (ids 1..n_skills; 0 = padding)
    n_items: int = 1  # known items + 1 spare row; 1 disables the Rasch terms
    dim: int = 64  # model width
    heads: int = 4
    dropout: float = 0.2
    ff_mult: int = 2  # feed-forward width = ff_mult * dim


class MonotonicAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qk = nn.Linear(dim, dim)  # AKT shares the query and key projections
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.decay = nn.Parameter(torch.zeros(heads))  # softplus(decay) = score lost per step of distance
        self.dropout = dropout

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Causal attention of query t on keys/values 0..t (callers shift keys for a strict past)."""
        b, t, d = query.shape
        h, hd = self.heads, self.head_dim
        q = self.qk(query).view(b, t, h, hd).transpose(1, 2)  # (B, H, T, hd)
        k = self.qk(key).view(b, t, h, hd).transpose(1, 2)
        v = self.v(value).view(b, t, h, hd).transpose(1, 2)
        pos = torch.arange(t)
        dist = (pos[:, None] - pos[None, :]).float()  # (T, T) steps back in time
        bias = -nn.functional.softplus(self.decay).view(h, 1, 1) * dist.clamp(min=0)  # (H, T, T)
        bias = bias.masked_fill(dist < 0, float("-inf"))  # no attention to the future
        out = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.unsqueeze(0))  # no attention dropout: it costs a third of a CPU step
        projected: torch.Tensor = self.proj(out.transpose(1, 2).reshape(b, t, d))  # (B, T, d)
        return projected


class Block(nn.Module):
    def __init__(self, cfg: AKTConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.attn = MonotonicAttention(d, cfg.heads, cfg.dropout)
        self.norm1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, cfg.ff_mult * d), nn.ReLU(), nn.Dropout(cfg.dropout),
                                nn.Linear(cfg.ff_mult * d, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        x = self.norm1(query + self.drop(self.attn(query, key, value)))
        normed: torch.Tensor = self.norm2(x + self.drop(self.ff(x)))
        return normed


class AKT(nn.Module):
    def __init__(self, cfg: AKTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.skill_emb = nn.Embedding(cfg.n_skills + 1, d, padding_idx=0)  # c_skill
        self.answer_emb = nn.Embedding(2 * (cfg.n_skills + 1), d)  # e_(skill, correct)
        self.item_difficulty = nn.Embedding(cfg.n_items + 1, 1, padding_idx=0)  # mu_item
        self.skill_variation = nn.Embedding(cfg.n_skills + 1, d, padding_idx=0)  # d_skill
        self.answer_variation = nn.Embedding(2 * (cfg.n_skills + 1), d)  # f_(skill, correct)
        for emb in (self.item_difficulty, self.skill_variation, self.answer_variation):
            nn.init.zeros_(emb.weight)
        self.question_encoder = Block(cfg)
        self.knowledge_encoder = Block(cfg)
        self.retriever = Block(cfg)
        self.start_key = nn.Parameter(torch.zeros(1, 1, d))
        self.start_value = nn.Parameter(torch.zeros(1, 1, d))
        self.out = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(d, 1))

    def forward(self, skill: torch.Tensor, item: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
        answer_index = 2 * skill + correct.long()  # (B, T)
        mu = self.item_difficulty(item)  # (B, T, 1)
        x = self.skill_emb(skill) + mu * self.skill_variation(skill)  # (B, T, d) questions
        y = self.answer_emb(answer_index) + mu * self.answer_variation(answer_index)  # (B, T, d) answers
        xq = self.question_encoder(x, x, x)
        yk = self.knowledge_encoder(y, y, y)
        # The question at t must read only the knowledge of answers < t: shift keys and values one step right
        # behind a learned "no history" slot, then causal attention over 0..t sees exactly start + answers < t.
        b = skill.shape[0]
        start_k = self.start_key.expand(b, 1, -1)
        start_v = self.start_value.expand(b, 1, -1)
        keys = torch.cat([start_k, xq[:, :-1]], dim=1)  # (B, T, d)
        values = torch.cat([start_v, yk[:, :-1]], dim=1)  # (B, T, d)
        h = self.retriever(xq, keys, values)  # (B, T, d)
        logit: torch.Tensor = self.out(torch.cat([h, x], dim=-1)).squeeze(-1) - mu.squeeze(-1)  # (B, T)
        return logit
