"""Free text in a table (reviews, messages, titles) as model input: words, a vocabulary of the training rows only,
and a bag of word embeddings per text column in front of the MLP.

A text column enters the input tensor as `max_words` columns of word ids (as floats, like every other input, so
that loaders, checkpoints, exports and `predict` treat a table with text as any table): 0 pads a short text, 1 is
a word the training rows did not have (or had too rarely), 2 and up are the vocabulary's words, most frequent first.
The model (`WordBags`) reads the ids back, looks each word's embedding up and averages them per text.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import torch
from torch import nn

PAD, UNKNOWN = 0, 1  # the ids that are no word of the vocabulary
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")  # letters and digits, with an apostrophe inside: don't, l'eau


def words(text: str) -> list[str]:
    """'Great food, didn't wait!' -> ['great', 'food', "didn't", 'wait']: lower case, punctuation dropped."""
    return WORD.findall(text.lower())


def fit_vocabulary(texts: list[str], size: int, min_count: int) -> list[str]:
    """The training texts' words seen at least `min_count` times, the `size` most frequent (ties alphabetical)."""
    counts = Counter(word for text in texts for word in words(text))
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return kept[:size]


def encode_texts(texts: list[str], vocabulary: list[str], max_words: int) -> tuple[torch.Tensor, int, int]:
    """(rows, max_words) float32 word ids, and the count of words read and of those unknown (for the description)."""
    index = {word: i + 2 for i, word in enumerate(vocabulary)}
    ids = torch.zeros(len(texts), max_words, dtype=torch.float32)
    seen = unknown = 0
    for row, text in enumerate(texts):
        found = [index.get(word, UNKNOWN) for word in words(text)[:max_words]]
        seen += len(found)
        unknown += found.count(UNKNOWN)
        if found:
            ids[row, : len(found)] = torch.tensor(found, dtype=torch.float32)
    return ids, seen, unknown


def looks_like_free_text(cells: list[str], least: int = 5) -> bool:
    """`least` words of letters or more in a typical cell: sentences, not names (Braund, Mr. Owen Harris),
    categories, codes or dates (2024-05-01)."""
    counts = sorted(sum(not word.isdigit() for word in words(cell)) for cell in cells if cell.strip())
    return bool(counts) and counts[len(counts) // 2] >= least


class WordBags(nn.Module):
    """The number (and category) columns as they are, then each text column as the mean of its words' embeddings.

    `layout` is the data's: how many columns come first, then for each text column its vocabulary size and the
    number of id columns it takes (see the module's docstring)."""

    def __init__(self, dense: int, texts: list[tuple[int, int]], dim: int):
        super().__init__()
        self.dense = dense
        self.widths = [width for _, width in texts]
        # one table per column: a word may mean another thing in a title than in a review
        self.bags = nn.ModuleList(nn.EmbeddingBag(size + 2, dim, mode="mean", padding_idx=PAD) for size, _ in texts)
        self.out_features = dense + dim * len(texts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts, at = [x[:, : self.dense]], self.dense
        for bag, width in zip(self.bags, self.widths, strict=True):
            parts.append(bag(x[:, at : at + width].long()))
            at += width
        return torch.cat(parts, dim=1)


def word_bags_for(info: dict[str, Any], dim: int) -> WordBags:
    """The WordBags of a table's data info."""
    text = info["text"]
    dense = info["input_shape"][0] - sum(column["max_words"] for column in text.values())
    return WordBags(dense, [(len(c["vocabulary"]), c["max_words"]) for c in text.values()], dim)
