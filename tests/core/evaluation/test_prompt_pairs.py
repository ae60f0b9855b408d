"""Prompt-pair zero-shot (CheXzero style): class vectors and probabilities in closed form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modalforge.evaluation import (
    build_prompt_pair_classifier,
    prompt_pair_probs,
    prompt_pair_scores,
    validate_prompt_pairs,
)

VECTORS = {
    "lesion left": [1.0, 0.0, 0.0],
    "left shows lesion": [2.0, 0.2, 0.0],
    "no lesion left": [0.0, 1.0, 0.0],
    "large": [0.0, 0.0, 3.0],
    "small": [0.0, 0.5, -1.0],
}
PROMPTS = {
    "left": {"positive": ["lesion left", "left shows lesion"], "negative": ["no lesion left"]},
    "large": {"positive": ["large"], "negative": ["small"]},
}


def _encode(texts: list[str]) -> torch.Tensor:
    return torch.tensor([VECTORS[t] for t in texts])


def test_classifier_is_the_normalised_mean_of_each_side():
    classifier = build_prompt_pair_classifier(_encode, PROMPTS, ["large", "left"], batch_size=2)
    assert classifier.shape == (2, 2, 3)
    pos = F.normalize(
        F.normalize(torch.tensor([1.0, 0, 0]), dim=0)
        + F.normalize(torch.tensor([2.0, 0.2, 0]), dim=0),
        dim=0,
    )
    torch.testing.assert_close(classifier[1, 0], pos)  # class order follows class_names
    torch.testing.assert_close(classifier[1, 1], torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(classifier[0, 0], torch.tensor([0.0, 0.0, 1.0]))


def test_probability_is_the_softmax_of_the_two_similarities():
    classifier = build_prompt_pair_classifier(_encode, PROMPTS, ["left", "large"])
    images = torch.tensor([[3.0, 1.0, 0.5], [0.0, 2.0, -1.0]])
    probs = prompt_pair_probs(images, classifier, scale=10.0)
    z = F.normalize(images, dim=-1)
    for c in range(2):
        s_pos, s_neg = z @ classifier[c, 0], z @ classifier[c, 1]
        expected = torch.sigmoid(10.0 * (s_pos - s_neg))  # softmax of two = sigmoid of the gap
        torch.testing.assert_close(probs[:, c], expected)
    assert probs[0, 0] > 0.5 > probs[1, 0]  # image 0 is near "lesion left", image 1 near "no"


def test_scores_keep_the_ranking_that_saturated_probabilities_lose():
    classifier = build_prompt_pair_classifier(_encode, PROMPTS, ["left", "large"])
    # all three are far nearer "lesion left" than "no lesion left", by different margins
    images = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.2, 0.0], [1.0, 0.4, 0.0]])
    probs = prompt_pair_probs(images, classifier)
    assert probs[:, 0].tolist() == [1.0, 1.0, 1.0]  # float32 sigmoid of gaps above ~17
    scores = prompt_pair_scores(images, classifier)
    z = F.normalize(images, dim=-1)
    expected = 100.0 * (z @ classifier[0, 0] - z @ classifier[0, 1])
    torch.testing.assert_close(scores[:, 0], expected)
    assert scores[0, 0] > scores[1, 0] > scores[2, 0] > 17


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        ({}, "map each finding"),
        ({"left": {"positive": ["a"]}}, "exactly `positive` and `negative`"),
        ({"left": {"positive": "a", "negative": ["b"]}}, "non-empty list of strings"),
        ({"left": {"positive": ["a", " "], "negative": ["b"]}}, "empty prompt"),
        ({"left": {"positive": ["a"], "negative": ["a"]}}, "both positive and negative"),
    ],
)
def test_bad_prompts_are_refused(prompts, message):
    with pytest.raises(ValueError, match=message):
        validate_prompt_pairs(prompts)


def test_prompts_must_name_every_class():
    with pytest.raises(ValueError, match=r"missing \['large'\], unknown \['right'\]"):
        validate_prompt_pairs(
            {"left": PROMPTS["left"], "right": PROMPTS["large"]}, ["left", "large"]
        )
    with pytest.raises(ValueError, match="different embedding spaces"):
        prompt_pair_probs(torch.zeros(2, 4), torch.zeros(1, 2, 3))
