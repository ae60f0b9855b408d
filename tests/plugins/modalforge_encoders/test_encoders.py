"""The pure-PyTorch encoders: output shapes agree with the declared FeatureSpec for every kind."""

from __future__ import annotations

import pytest
import torch

from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_encoders import CNNEncoder, EmbeddingEncoder, MLPEncoder

VECTOR_MODALITIES = [
    Modality("labs", "tabular", (7,)),
    Modality("state", "lowdim", (4,)),
    Modality("ecg", "timeseries", (10, 3)),
]
SPATIAL_MODALITIES = [
    Modality("image", "image2d", (3, 12, 12)),
    Modality("depth", "depth", (1, 9, 11)),
    Modality("ct", "volume3d", (2, 8, 8, 8)),
]


@pytest.mark.parametrize("modality", VECTOR_MODALITIES, ids=lambda m: str(m.kind))
@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
def test_mlp_output_matches_feature_spec(modality, norm):
    enc = MLPEncoder(modality, hidden_dims=[16, 8], out_dim=5, dropout=0.1, norm=norm)
    out = enc(torch.randn(4, *modality.shape))
    assert enc.output.dim == 5 and not enc.output.tokens
    assert out.shape == (4, 5)
    assert enc.in_dim == torch.Size(modality.shape).numel()


def test_mlp_without_hidden_layers_is_one_linear_map():
    enc = MLPEncoder(Modality("x", "tabular", (3,)), hidden_dims=[], out_dim=2)
    x = torch.randn(5, 3)
    lin = enc.net[0]
    torch.testing.assert_close(enc(x), x @ lin.weight.T + lin.bias)


def test_mlp_rejects_image_modality_naming_the_field():
    with pytest.raises(SpecError, match=r"model\.encoders\.image"):
        MLPEncoder(Modality("image", "image2d", (1, 4, 4)))


@pytest.mark.parametrize("modality", SPATIAL_MODALITIES, ids=lambda m: str(m.kind))
@pytest.mark.parametrize("out_dim", [None, 6])
def test_cnn_output_and_tokens_match_feature_spec(modality, out_dim):
    enc = CNNEncoder(modality, widths=[4, 8], out_dim=out_dim).eval()
    x = torch.randn(2, *modality.shape)
    pooled, tokens = enc(x), enc.forward_tokens(x)
    dim = out_dim or 8
    assert enc.output.dim == dim and enc.output.tokens
    assert pooled.shape == (2, dim)
    # second stage has stride 2: ceil(size / 2) positions per spatial axis
    positions = 1
    for size in modality.shape[1:]:
        positions *= (size + 1) // 2
    assert tokens.shape == (2, positions, dim)
    # pooling and the linear projection commute: pooled = mean of the tokens
    torch.testing.assert_close(pooled, tokens.mean(dim=1), rtol=1e-5, atol=1e-5)


def test_cnn_picks_conv_dimension_and_channels_from_modality():
    enc2d = CNNEncoder(Modality("i", "image2d", (3, 8, 8)), widths=[4])
    enc3d = CNNEncoder(Modality("v", "volume3d", (2, 8, 8, 8)), widths=[4], norm="group")
    assert isinstance(enc2d.features[0], torch.nn.Conv2d) and enc2d.features[0].in_channels == 3
    assert isinstance(enc3d.features[0], torch.nn.Conv3d) and enc3d.features[0].in_channels == 2


@pytest.mark.parametrize("spatial", [2, 3])
def test_cnn_stem_stride_downsamples_the_first_stage_with_the_same_weights(spatial):
    shape = (1, 8, 8) if spatial == 2 else (1, 8, 8, 8)
    modality = Modality("x", "image2d" if spatial == 2 else "volume3d", shape)
    torch.manual_seed(0)
    full = CNNEncoder(modality, widths=[3, 5], norm="none").eval()
    strided = CNNEncoder(modality, widths=[3, 5], norm="none", stem_stride=2).eval()
    strided.load_state_dict(full.state_dict())  # the stride changes no parameter
    x = torch.randn(2, *shape)
    assert full.feature_map(x).shape[2:] == (4,) * spatial
    assert strided.feature_map(x).shape[2:] == (2,) * spatial
    # the strided stem is the full-resolution stem read at every second position
    conv = torch.nn.functional.conv2d if spatial == 2 else torch.nn.functional.conv3d
    stem = full.features[0]
    every_second = (slice(None), slice(None)) + (slice(None, None, 2),) * spatial
    expected = conv(x, stem.weight, stem.bias, padding=1)[every_second]
    torch.testing.assert_close(strided.features[0](x), expected)
    assert strided(x).shape == (2, 5)
    with pytest.raises(ValueError, match="stem_stride"):
        CNNEncoder(modality, widths=[3], stem_stride=0)


@pytest.mark.parametrize("spatial", [2, 3])
def test_cnn_pool_grid_is_cell_averages_of_the_last_stage(spatial):
    shape = (1, 8, 8) if spatial == 2 else (1, 8, 8, 8)
    modality = Modality("x", "image2d" if spatial == 2 else "volume3d", shape)
    enc = CNNEncoder(modality, widths=[3, 5], pool_grid=2).eval()
    x = torch.randn(2, *shape)
    maps = enc.feature_map(x)  # (2, 5, 4, ...): each axis splits into halves of 2
    cells = maps.unfold(2, 2, 2).unfold(3, 2, 2)
    if spatial == 3:
        cells = cells.unfold(4, 2, 2)
    expected = cells.flatten(-spatial).mean(-1).flatten(1)
    assert enc.output.dim == 5 * 2**spatial and not enc.output.tokens
    torch.testing.assert_close(enc(x), expected)
    with pytest.raises(ValueError, match="no tokens"):
        enc.forward_tokens(x)
    assert CNNEncoder(modality, widths=[3, 5], pool_grid=2, out_dim=6)(x).shape == (2, 6)


@pytest.mark.parametrize("grid", [None, 2])
def test_cnn_pool_max_and_avgmax_are_cell_maxima_and_both(grid):
    modality = Modality("x", "volume3d", (1, 8, 8, 8))
    torch.manual_seed(0)
    avg = CNNEncoder(modality, widths=[3, 5], pool_grid=grid).eval()
    top = CNNEncoder(modality, widths=[3, 5], pool_grid=grid, pool="max").eval()
    both = CNNEncoder(modality, widths=[3, 5], pool_grid=grid, pool="avgmax").eval()
    top.load_state_dict(avg.state_dict())
    both.load_state_dict(avg.state_dict())
    x = torch.randn(2, 1, 8, 8, 8)
    maps = avg.feature_map(x)  # (2, 5, 4, 4, 4)
    cells = maps if grid is None else maps.unfold(2, 2, 2).unfold(3, 2, 2).unfold(4, 2, 2)
    expected_max = cells.flatten(-3).amax(-1).flatten(1)  # each cell's last three axes
    torch.testing.assert_close(top(x), expected_max)
    torch.testing.assert_close(both(x), torch.cat([avg(x), expected_max], dim=1))
    assert both.output.dim == 2 * avg.output.dim and not both.output.tokens
    assert top.output.tokens is (grid is None)
    with pytest.raises(ValueError, match="pool must be"):
        CNNEncoder(modality, widths=[3], pool="sum")


def test_cnn_pool_grid_tells_left_from_right():
    """A blob on the left and the same blob on the right: equal global averages, not grid ones."""
    modality = Modality("x", "image2d", (1, 8, 8))
    left, right = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    left[..., 3:5, 1:3], right[..., 3:5, 5:7] = 1.0, 1.0
    torch.manual_seed(0)
    flat = CNNEncoder(modality, widths=[4], norm="none").eval()
    torch.testing.assert_close(flat(left), flat(right))
    grid = CNNEncoder(modality, widths=[4], norm="none", pool_grid=2).eval()
    grid.load_state_dict(flat.state_dict())
    assert not torch.allclose(grid(left), grid(right))


def test_embedding_mean_pools_non_padding_tokens():
    enc = EmbeddingEncoder(Modality("text", "text", (None,)), vocab_size=20, dim=6)
    ids = torch.tensor([[3, 4, 0, 0], [5, 6, 7, 1]])
    pooled, tokens = enc(ids), enc.forward_tokens(ids)
    assert enc.output.dim == 6 and enc.output.tokens
    assert pooled.shape == (2, 6) and tokens.shape == (2, 4, 6)
    w = enc.embed.weight
    torch.testing.assert_close(pooled[0], (w[3] + w[4]) / 2)
    torch.testing.assert_close(pooled[1], (w[5] + w[6] + w[7] + w[1]) / 4)


def test_embedding_all_padding_gives_zeros_not_nan():
    enc = EmbeddingEncoder(Modality("text", "text", (3,)), vocab_size=5, dim=4)
    assert torch.equal(enc(torch.zeros(1, 3, dtype=torch.long)), torch.zeros(1, 4))


@pytest.mark.parametrize(
    "factory",
    [
        lambda: MLPEncoder(VECTOR_MODALITIES[0], hidden_dims=[8]),
        lambda: CNNEncoder(SPATIAL_MODALITIES[2], widths=[4, 4], out_dim=3),
        lambda: CNNEncoder(SPATIAL_MODALITIES[2], widths=[4, 4], out_dim=3, pool_grid=2),
        lambda: EmbeddingEncoder(Modality("t", "text", (5,)), vocab_size=9, dim=3),
    ],
)
def test_every_encoder_parameter_gets_a_gradient(factory):
    enc = factory().train()
    m = enc.modality
    if str(m.kind) == "text":
        x = torch.randint(1, 9, (3, 5))
    else:
        x = torch.randn(3, *m.shape)
    enc(x).square().sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_hashed_words_make_the_embedding_features_add_up_over_words():
    import zlib

    from modalforge.text.tokenizers import HashedWordTokenizer

    tok = HashedWordTokenizer(vocab_size=1000, context_length=10)
    ids = tok("Push the RED block!")
    words = [1 + zlib.crc32(w.encode()) % 997 for w in ("push", "the", "red", "block")]
    assert ids.tolist() == [998, *words, 999, 0, 0, 0, 0]  # start, words, end, padding
    assert torch.equal(tok("push  the red block"), ids)  # cleaning: case, spacing, punctuation
    enc = EmbeddingEncoder(
        Modality("instruction", "text", (None,), dtype="str"),
        vocab_size=1000,
        dim=8,
        tokenizer="words",
        context_length=10,
    )
    assert enc.preprocess() is enc.tokenizer
    # mean of word embeddings: the novel pair is the sum of what each word contributes
    f = lambda s: enc(enc.tokenizer(s)[None])[0] * 6  # noqa: E731 - 6 tokens per sentence
    novel = f("push red block to right")
    assert torch.allclose(
        novel,
        f("push red block to left") - f("push blue block to left") + f("push blue block to right"),
        atol=1e-5,
    )
    assert EmbeddingEncoder(Modality("t", "text", (None,)), 300, tokenizer="bytes").preprocess()
    with pytest.raises(SpecError, match="vocab_size"):
        EmbeddingEncoder(Modality("t", "text", (None,)), 100, tokenizer="bytes")
    with pytest.raises(SpecError, match="padding_idx"):
        EmbeddingEncoder(Modality("t", "text", (None,)), 100, tokenizer="words", padding_idx=3)
