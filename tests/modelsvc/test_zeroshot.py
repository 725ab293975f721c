import numpy as np
import pytest

from modelsvc.zeroshot import diversity_pick, label_prompts, zero_shot_probabilities


def test_label_prompts_use_descriptions_when_given():
    assert label_prompts([{"name": "ham"}, {"name": "spam", "description": "ads, prizes"}]) == [
        "ham",
        "spam: ads, prizes",
    ]


def test_zero_shot_probabilities_by_hand():
    items = np.array([[1.0, 0.0], [0.6, 0.8]])
    labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    p = zero_shot_probabilities(items, labels, temperature=0.5)
    # row 0: logits (2, 0) -> softmax; row 1: logits (1.2, 1.6)
    np.testing.assert_allclose(p[0], [1 / (1 + np.exp(-2)), np.exp(-2) / (1 + np.exp(-2))])
    np.testing.assert_allclose(p[1], [1 / (1 + np.exp(0.4)), np.exp(0.4) / (1 + np.exp(0.4))])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        zero_shot_probabilities(items, labels, temperature=0)


def test_diversity_pick_takes_one_item_from_each_cluster():
    rng = np.random.default_rng(0)
    centres = np.array([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    # a dense cluster of 90 items and two sparse ones of 5: the pick still covers all three
    emb = np.vstack([c + rng.normal(scale=0.3, size=(m, 2)) for c, m in zip(centres, (90, 5, 5), strict=True)])
    picked = diversity_pick(emb, 3)
    assert sorted({0 if i < 90 else 1 if i < 95 else 2 for i in picked}) == [0, 1, 2]
    assert diversity_pick(emb, 0) == []
    assert diversity_pick(emb[:2], 5) == [0, 1]


@pytest.mark.ml
def test_zero_shot_with_the_real_encoder_picks_the_right_label():
    from modelsvc.runtime.hf import Encoder, EncoderConfig

    enc = Encoder(EncoderConfig(device="cpu", cpu_threads=2))
    labels = [{"name": "sports"}, {"name": "politics"}, {"name": "cooking"}]
    texts = [
        "The striker scored twice and the team won the championship final.",
        "Parliament passed the budget after the prime minister's speech.",
        "Simmer the onions in butter, then add garlic and stir the sauce.",
    ]
    p = zero_shot_probabilities(enc.embed(texts), enc.embed(label_prompts(labels)))
    assert list(p.argmax(axis=1)) == [0, 1, 2]
    assert (p.max(axis=1) > 0.5).all()
