"""The DALL·E transformer: causality, KV-cache decoding, seeded sampling, learning a conditioned
toy through the engine, the frozen tokenizer, checkpoints and bad input."""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from modalforge.engine import load_checkpoint, train
from modalforge.errors import SpecError
from modalforge_generators.autoregressive import DalleTransformer
from modalforge_generators.sampling import SamplingError
from tests.core.engine.helpers import GAN_SECTIONS, make_pipeline
from tests.plugins.modalforge_clip.conftest import write_tiny_clip_bpe
from tests.plugins.modalforge_generators.vq_toys import (
    DALLE_PARAMS,
    ToyCaptions,
    dalle_spec,
    pipeline,
    train_vqvae,
)


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory):
    """A trained stage-1 run folder (spec.yaml + checkpoints/)."""
    out = tmp_path_factory.mktemp("stage1") / "vq"
    train_vqvae(out)
    return out


@pytest.fixture(scope="module")
def learned(vq_run, tmp_path_factory):
    """Stage 2 trained on the toy through the engine: (run folder, pipeline)."""
    out = tmp_path_factory.mktemp("stage2") / "dalle"
    pipe = pipeline(dalle_spec(vq_run, epochs=40, lr=0.01, cond_drop_prob=0.2))
    train(pipe, out)
    return out, pipe


def make(vq_run, **params) -> DalleTransformer:
    torch.manual_seed(0)
    full = {**DALLE_PARAMS, "tokenizer_checkpoint": str(vq_run), **params}
    return DalleTransformer(ToyCaptions().modalities, **full)


def random_inputs(model: DalleTransformer, batch: int = 3):
    g = torch.Generator().manual_seed(1)
    text = torch.randint(0, 256, (batch, model.context_length), generator=g)
    codes = torch.randint(0, model.num_codes, (batch, model.num_image_tokens), generator=g)
    return text, codes


def test_later_tokens_do_not_change_earlier_logits(vq_run):
    model = make(vq_run, context_length=6, text_loss_weight=0.5, dropout=0.1).eval()
    text, codes = random_inputs(model)
    image_logits, text_logits = model.logits(text, codes)
    assert image_logits.shape == (3, 4, model.num_codes)
    assert text_logits.shape == (3, 5, model.text_vocab)
    later = codes.clone()
    later[:, 2] = (later[:, 2] + 1) % model.num_codes
    changed, _ = model.logits(text, later)
    torch.testing.assert_close(changed[:, :3], image_logits[:, :3], rtol=0, atol=0)
    assert not torch.allclose(changed[:, 3], image_logits[:, 3])
    text2 = text.clone()
    text2[:, 3] = (text2[:, 3] + 1) % 256
    img2, txt2 = model.logits(text2, codes)
    torch.testing.assert_close(txt2[:, :3], text_logits[:, :3], rtol=0, atol=0)
    assert not torch.allclose(img2, image_logits)  # every image code sees the whole caption


def test_kv_cache_decoding_equals_the_full_forward(vq_run):
    model = make(vq_run, context_length=6, layers=2).eval()
    text, codes = random_inputs(model)
    with torch.no_grad():
        full, _ = model.logits(text, codes)
        x = model._embed_text(model.text_input(text))
        cache = model.transformer.new_cache(3, 6 + 3, device=x.device, dtype=x.dtype)
        stepwise = [model.image_head(model.transformer(x, cache)[:, -1])]
        for j in range(3):
            h = model.transformer(model._embed_image(codes[:, j : j + 1], start=j), cache)
            stepwise.append(model.image_head(h[:, -1]))
    torch.testing.assert_close(torch.stack(stepwise, 1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 9


def test_padding_after_end_of_text_is_one_token(vq_run):
    model = make(vq_run, context_length=6)
    ids = model.caption_tokenizer(["a", ""])
    assert ids.tolist() == [[256, 97, 257, 0, 0, 0], [256, 257, 0, 0, 0, 0]]
    pad = model.pad_id
    assert model.text_input(ids).tolist() == [[256, 97, 257, pad, pad, pad], [256, 257] + [pad] * 4]


def test_sampling_is_reproducible_given_a_generator(vq_run):
    model = make(vq_run)
    a = model.sample(["a", "b"], 8, generator=torch.Generator().manual_seed(3))
    b = model.sample(["a", "b"], 8, generator=torch.Generator().manual_seed(3))
    c = model.sample(["a", "b"], 8, generator=torch.Generator().manual_seed(4))
    assert a.shape == (2, 8, 1, 4, 4)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.training  # sampling restores the mode


def test_learns_a_conditioned_toy_through_the_engine(learned):
    _, pipe = learned
    model = pipe.model
    data = pipe.dataset
    grids = model.image_tokenizer.encode(data.images).flatten(1)
    pairs = list(zip(grids.tolist(), data.captions, strict=True))
    wanted = {c: {tuple(g) for g, cap in pairs if cap == c} for c in "ab"}
    assert not wanted["a"] & wanted["b"]
    g = torch.Generator().manual_seed(0)
    for scale in (1.0, 2.0):  # plain and classifier-free guided sampling
        codes = model.sample_codes(["a", "b"], 40, g, guidance_scale=scale).flatten(2)
        for p, caption in enumerate("ab"):
            hits = sum(tuple(seq) in wanted[caption] for seq in codes[p].tolist())
            assert hits >= 38, (caption, scale, hits)


def test_frozen_tokenizer_is_unchanged_and_not_optimised(learned, vq_run):
    _, pipe = learned
    model = pipe.model
    latest = sorted((vq_run / "checkpoints").glob("step_*"))[-1]
    stage1 = load_file(str(latest / "model.safetensors"))
    for key, value in model.image_tokenizer.state_dict().items():
        torch.testing.assert_close(value, stage1[key], rtol=0, atol=0, msg=key)
    frozen = {id(p) for p in model.image_tokenizer.parameters()}
    opt = model.configure_optimizers(0.1, 0.1)["model"]
    assert not frozen & {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(not p.requires_grad for p in model.image_tokenizer.parameters())
    model.train()
    assert not model.image_tokenizer.training


def test_checkpoint_is_self_contained(learned):
    run, pipe = learned
    saved = load_file(str(sorted((run / "checkpoints").glob("step_*"))[-1] / "model.safetensors"))
    assert any(k.startswith("image_tokenizer.") for k in saved)
    fresh = pipeline(pipe.spec.model_dump(), init_seed=9).model
    load_checkpoint(run, model=fresh)
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    assert torch.equal(pipe.model.sample(["a"], 4, g1), fresh.sample(["a"], 4, g2))


def test_resume_equals_uninterrupted(vq_run, tmp_path):
    cfg = dalle_spec(vq_run, epochs=3, dropout=0.1, cond_drop_prob=0.3)
    full = pipeline(cfg)
    train(full, tmp_path / "full")
    resumed = pipeline(cfg, init_seed=5)
    train(resumed, tmp_path / "res", resume=tmp_path / "full" / "checkpoints" / "step_00000004")
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_another_generators_checkpoint_is_refused(learned, vq_run, tmp_path):
    dalle_run, _ = learned
    with pytest.raises(SpecError, match=r"tokenizer_checkpoint: .*trained as generator 'dalle'"):
        make(dalle_run)
    gan = make_pipeline({"epochs": 1}, **GAN_SECTIONS)  # a GAN of the engine tests
    train(gan, tmp_path / "gan")
    with pytest.raises(SpecError, match=r"tokenizer_checkpoint: .*trained as generator 'toy_gan'"):
        make(tmp_path / "gan")
    with pytest.raises(SpecError, match=r"tokenizer_checkpoint: .*does not exist") as info:
        make(tmp_path / "missing")
    assert "vqvae" in str(info.value)  # the hint says what to train first


def test_a_checkpoint_away_from_its_run_needs_its_spec(vq_run, tmp_path):
    step = sorted((vq_run / "checkpoints").glob("step_*"))[-1]
    copied = shutil.copytree(step, tmp_path / "alone")
    with pytest.raises(SpecError, match=r"tokenizer_spec: no spec.yaml"):
        make(copied)
    model = make(copied, tokenizer_spec=str(vq_run / "spec.yaml"))
    assert model.image_tokenizer.codebook_size == 8


def test_images_of_another_shape_are_refused(vq_run):
    with pytest.raises(SpecError, match=r"trained on images \(1, 4, 4\).* \(1, 8, 8\)"):
        DalleTransformer(
            ToyCaptions(size=8).modalities, tokenizer_checkpoint=str(vq_run), **DALLE_PARAMS
        )


def test_bad_sampling_requests(vq_run):
    model = make(vq_run)
    g = torch.Generator().manual_seed(0)
    for bad, match in (
        (([], 1), "no prompts"),
        ((["a"], 0), "num_samples"),
        (("a", 1), "single string"),
        (([1, 2], 1), "prompt strings"),
    ):
        with pytest.raises(SamplingError, match=match):
            model.sample(*bad, generator=g)
    with pytest.raises(SamplingError, match="temperature"):
        model.sample(["a"], 1, g, temperature=0.0)
    assert model.sample([""], 2, g).shape == (1, 2, 1, 4, 4)  # empty prompt: start + end
    with pytest.warns(UserWarning, match="truncated"):
        assert model.sample(["a very long prompt"], 1, g).shape == (1, 1, 1, 4, 4)


def test_preprocess_and_parameters(vq_run, tmp_path):
    model = make(vq_run)
    tok = model.preprocess("text")
    assert tok("b").tolist() == [256, 98, 257, 0]
    assert model.preprocess("image") is None
    with pytest.raises(SpecError, match="model.encoders"):
        make(vq_run, encoders={"text": torch.nn.Identity()})
    with pytest.raises(SpecError, match="params.heads"):
        make(vq_run, width=30, heads=4)
    with pytest.raises(SpecError, match="temperature"):
        make(vq_run, temperature=0.0)
    write_tiny_clip_bpe(tmp_path / "bpe")
    bpe = make(vq_run, tokenizer="clip_bpe", tokenizer_dir=str(tmp_path / "bpe"), context_length=8)
    assert bpe.text_embedding.num_embeddings == bpe.caption_tokenizer.vocab_size + 1
    assert bpe.sample(["a photo of the cat"], 1).shape == (1, 1, 1, 4, 4)
