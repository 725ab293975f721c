"""The real all-MiniLM-L6-v2 from the PyPI package, loaded offline with plain transformers."""

import numpy as np
import pytest

pytestmark = pytest.mark.ml


@pytest.fixture(scope="module")
def encoder():
    from modelsvc.runtime.hf import Encoder, EncoderConfig

    return Encoder(EncoderConfig(device="cpu", cpu_threads=2))


def test_embeddings_are_normalised_and_in_input_order(encoder):
    texts = ["a much longer sentence about the stock market falling sharply today", "hi", "football"]
    emb = encoder.embed(texts, batch_size=2)
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # the same text alone gives the same vector: sorting and padding do not leak between texts
    alone = encoder.embed([texts[0]])
    np.testing.assert_allclose(alone[0], emb[0], atol=1e-5)


def test_similar_texts_are_closer(encoder):
    emb = encoder.embed(["The team won the football match.", "The squad won the soccer game.", "Stocks fell 5%."])
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2


def test_missing_or_pickle_only_model_is_a_clear_error(tmp_path):
    from modelsvc.runtime.hf import Encoder, EncoderConfig, ModelLoadError

    with pytest.raises(ModelLoadError, match="No model directory"):
        Encoder(EncoderConfig(model_path=str(tmp_path / "nope")))
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelLoadError, match="safetensors"):
        Encoder(EncoderConfig(model_path=str(tmp_path / "pickled")))
