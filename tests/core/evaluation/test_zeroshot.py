"""Zero-shot classifier: parity with open_clip, closed-form checks, and input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import top_k_accuracy_score

from modalforge.evaluation import (
    DEFAULT_TEMPLATES,
    build_zeroshot_classifier,
    format_prompts,
    per_class_accuracy,
    topk_accuracy,
    zeroshot_logits,
)

CLASSES = ["cat", "dog", "lorry", "zebra", "handwritten seven"]
TEMPLATES = ["a photo of a {}.", "a blurry photo of the {}.", "itap of a {}.", "{}"]


@pytest.fixture(scope="module")
def tiny_open_clip():
    open_clip = pytest.importorskip("open_clip")
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    model = open_clip.CLIP(
        embed_dim=16,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, patch_size=8, image_size=16, head_width=16),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
    ).eval()
    return open_clip, model


CALLABLES = [lambda c: f"a sketch of {c}", lambda c: f"{c}!"]


@pytest.mark.parametrize("templates", [TEMPLATES, CALLABLES])
def test_matches_open_clip(tiny_open_clip, templates):
    open_clip, model = tiny_open_clip
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    expected = build_zero_shot_classifier(
        model, open_clip.tokenize, CLASSES, templates, num_classes_per_batch=2
    )
    with torch.no_grad():
        got = build_zeroshot_classifier(
            lambda prompts: model.encode_text(open_clip.tokenize(prompts)),
            CLASSES,
            templates,
            batch_size=3,  # batches that cut through a class's prompts
        )
    assert got.shape == (16, len(CLASSES))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_closed_form_mean_of_normalised_embeddings():
    table = {
        "a x": torch.tensor([3.0, 0.0]),
        "the x": torch.tensor([0.0, 1.0]),
        "a y": torch.tensor([-2.0, 0.0]),
        "the y": torch.tensor([0.0, -5.0]),
    }
    calls = []

    def encode(prompts):
        calls.append(list(prompts))
        return torch.stack([table[p] for p in prompts])

    w = build_zeroshot_classifier(encode, ["x", "y"], ["a {}", "the {}"], batch_size=3)
    s = 2**-0.5
    torch.testing.assert_close(w, torch.tensor([[s, -s], [s, -s]]))
    assert calls == [["a x", "the x", "a y"], ["the y"]]


def test_zeroshot_logits_are_cosines():
    g = torch.Generator().manual_seed(0)
    classifier = F.normalize(torch.randn(8, 4, generator=g), dim=0)
    images = torch.randn(5, 8, generator=g) * 7
    expected = F.cosine_similarity(images[:, :, None], classifier[None], dim=1)
    torch.testing.assert_close(zeroshot_logits(images, classifier), expected)
    with pytest.raises(ValueError, match="different embedding spaces"):
        zeroshot_logits(torch.randn(2, 3), classifier)


def test_topk_and_per_class_accuracy_match_sklearn():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(50, 6, generator=g), torch.randint(0, 6, (50,), generator=g)
    got = topk_accuracy(logits, y, ks=(1, 3, 10))
    for k in (1, 3):
        assert got[k] == pytest.approx(
            top_k_accuracy_score(y, logits.numpy(), k=k, labels=np.arange(6))
        )
    assert got[10] == 1.0  # k above the class count: every label is among the top C
    table = per_class_accuracy(logits, y)
    pred = logits.argmax(1)
    for c, (n, acc) in enumerate(table):
        assert n == int((y == c).sum())
        assert acc == pytest.approx(float((pred[y == c] == c).float().mean()))


def test_duplicate_class_names_are_named():
    with pytest.raises(ValueError, match=r"'dog'.*'cat'|'cat'.*'dog'"):
        build_zeroshot_classifier(lambda p: torch.ones(len(p), 2), ["cat", "dog", "cat", "dog"])


def test_template_without_placeholder_is_rejected():
    with pytest.raises(ValueError, match="no '\\{\\}' placeholder"):
        build_zeroshot_classifier(lambda p: torch.ones(len(p), 2), ["a"], ["a photo"])


@pytest.mark.parametrize("template", ["a photo of {} {}", "a { photo of {}", "{} and {name}"])
def test_template_with_other_placeholders_is_rejected(template):
    with pytest.raises(ValueError, match=r"must have exactly one '\{\}' for the class name"):
        build_zeroshot_classifier(lambda p: torch.ones(len(p), 2), ["cat", "dog"], [template])
    seen = []
    encode = lambda p: seen.extend(p) or torch.ones(len(p), 2)  # noqa: E731
    build_zeroshot_classifier(encode, ["cat"], ["a {{literal}} {}"])
    assert seen == ["a {literal} cat"]


def test_default_templates_format():
    prompts = format_prompts("seven", DEFAULT_TEMPLATES)
    assert len(set(prompts)) == len(DEFAULT_TEMPLATES) and all("seven" in p for p in prompts)
