"""The built-in CLIP text tower against open_clip's, loading its weights through our path."""

from __future__ import annotations

import pickle

import pytest
import torch

from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality
from modalforge_clip import ClipTextEncoder
from modalforge_clip.convert import text_tower_state_dict

open_clip = pytest.importorskip("open_clip")
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg, CustomTextCLIP  # noqa: E402

CTX, VOCAB, WIDTH, HEADS, LAYERS, EMBED = 16, 300, 32, 4, 2, 24
IDS = Modality("text", "text", (CTX,), "int64")
CAPTIONS = Modality("text", "text", (None,), "str")
SIZES = dict(context_length=CTX, vocab_size=VOCAB, width=WIDTH, heads=HEADS, layers=LAYERS)


def _open_clip_model(quick_gelu: bool = False, custom: bool = False, layers: int = LAYERS):
    torch.manual_seed(7)
    cls = CustomTextCLIP if custom else CLIP
    text_cfg = CLIPTextCfg(
        context_length=CTX, vocab_size=VOCAB, width=WIDTH, heads=HEADS, layers=layers
    )
    vision_cfg = CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=16)
    return cls(
        embed_dim=EMBED, vision_cfg=vision_cfg, text_cfg=text_cfg, quick_gelu=quick_gelu
    ).eval()


def _save(model, path) -> str:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return str(path)


def _token_ids(batch: int = 4) -> torch.Tensor:
    """Start token, random words, the end-of-text id (the largest) at varying positions, padding."""
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1, VOCAB - 2, (batch, CTX), generator=g)
    ids[:, 0] = VOCAB - 2
    for row, end in enumerate([3, CTX - 1, 1, 8][:batch]):
        ids[row, end] = VOCAB - 1
        ids[row, end + 1 :] = 0
    return ids


@pytest.mark.parametrize(("act", "quick"), [("gelu", False), ("quick_gelu", True)])
def test_open_clip_weights_load_and_encode_text_matches(tmp_path, act, quick):
    ref = _open_clip_model(quick_gelu=quick)
    path = _save(ref, tmp_path / "clip.safetensors")
    enc = ClipTextEncoder(IDS, **SIZES, embed_dim=EMBED, act=act, weights_file=path).eval()
    ids = _token_ids()
    with torch.no_grad():
        expected = ref.encode_text(ids)
        got = enc(ids)
    assert enc.output.dim == EMBED == got.shape[1]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_state_dict_layout_is_open_clips_text_tower():
    ref = _open_clip_model()
    enc = ClipTextEncoder(IDS, **SIZES, embed_dim=EMBED)
    text_keys = {k for k in ref.state_dict() if not k.startswith("visual.") and k != "logit_scale"}
    assert set(enc.state_dict()) == text_keys
    for key, value in enc.state_dict().items():
        assert value.shape == ref.state_dict()[key].shape, key


def test_training_checkpoint_with_ddp_prefix_and_custom_text_model_load(tmp_path):
    ref = _open_clip_model()
    ckpt = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}
    torch.save(ckpt, tmp_path / "epoch_3.pt")
    enc = ClipTextEncoder(IDS, **SIZES, embed_dim=EMBED, weights_file=str(tmp_path / "epoch_3.pt"))
    custom = _open_clip_model(custom=True)  # keeps the tower under `text.`
    enc2 = ClipTextEncoder(
        IDS, **SIZES, embed_dim=EMBED, weights_file=_save(custom, tmp_path / "custom.safetensors")
    )
    ids = _token_ids()
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(ids), ref.encode_text(ids), rtol=0, atol=1e-5)
        torch.testing.assert_close(enc2.eval()(ids), custom.encode_text(ids), rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
def test_openai_torchscript_archive_loads(tmp_path):
    """OpenAI released CLIP as TorchScript archives holding the same top-level names."""
    ref = _open_clip_model(quick_gelu=True)

    class Holder(torch.nn.Module):  # a traceable module with the CLIP model's state dict
        def __init__(self, model):
            super().__init__()
            for name, child in model.named_children():
                setattr(self, name, child)
            for name, param in model.named_parameters(recurse=False):
                setattr(self, name, param)

        def forward(self, x):
            return x

    torch.jit.trace(Holder(ref), torch.zeros(1)).save(str(tmp_path / "ViT-tiny.pt"))
    enc = ClipTextEncoder(
        IDS, **SIZES, embed_dim=EMBED, act="quick_gelu", weights_file=str(tmp_path / "ViT-tiny.pt")
    ).eval()
    ids = _token_ids()
    with torch.no_grad():
        torch.testing.assert_close(enc(ids), ref.encode_text(ids), rtol=0, atol=1e-5)


def test_converter_keeps_only_the_text_tower():
    state = _open_clip_model().state_dict()
    converted = text_tower_state_dict({f"module.{k}": v for k, v in state.items()})
    assert "logit_scale" not in converted and not any(k.startswith("visual") for k in converted)
    assert (
        converted["transformer.resblocks.1.attn.in_proj_weight"]
        is state["transformer.resblocks.1.attn.in_proj_weight"]
    )


def test_weights_of_another_architecture_list_the_differences(tmp_path):
    path = _save(_open_clip_model(layers=3), tmp_path / "deeper.safetensors")
    with pytest.raises(CheckpointError) as info:
        ClipTextEncoder(IDS, **SIZES, embed_dim=EMBED, weights_file=path)
    msg = str(info.value)
    assert msg.startswith("model.encoders.text.params.weights_file: ")
    assert "unexpected: transformer.resblocks.2." in msg and "layers=3" in msg
    with pytest.raises(CheckpointError, match=r"shape: token_embedding\.weight \(300, 32\) vs"):
        ClipTextEncoder(IDS, **{**SIZES, "vocab_size": 400}, embed_dim=EMBED, weights_file=path)


def test_missing_or_foreign_weights_file(tmp_path):
    with pytest.raises(SpecError, match=r"params\.weights_file: weights file .* does not exist"):
        ClipTextEncoder(IDS, **SIZES, weights_file=str(tmp_path / "none.safetensors"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"params\.weights_file: .*junk\.pt is not a PyTorch"):
        ClipTextEncoder(IDS, **SIZES, weights_file=str(tmp_path / "junk.pt"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "is empty"), ("half", "is truncated or corrupt"), ([1, 2], "holds a list")],
)
def test_a_damaged_weights_file_says_what_is_wrong(tmp_path, content, expected):
    path = tmp_path / "w.pt"
    if content == "half":
        torch.save(_open_clip_model().state_dict(), path)
        path.write_bytes(path.read_bytes()[:5000])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(
        CheckpointError, match=rf"^model\.encoders\.text\.params\.weights_file: .*{expected}"
    ):
        ClipTextEncoder(IDS, **SIZES, weights_file=str(path))


def test_padding_after_the_end_token_does_not_change_the_embedding():
    enc = ClipTextEncoder(IDS, **SIZES, embed_dim=EMBED).eval()
    ids = _token_ids()
    noisy = ids.clone()
    noisy[0, 4:] = torch.randint(1, VOCAB - 2, (CTX - 4,))  # the end token sits at position 3
    shorter = ids[:, :10]  # sequences shorter than the context use the first positions
    with torch.no_grad():
        torch.testing.assert_close(enc(noisy)[0], enc(ids)[0])
        torch.testing.assert_close(enc(shorter)[[0, 2, 3]], enc(ids)[[0, 2, 3]])


def test_captions_are_tokenised_by_preprocess_and_encoded():
    enc = ClipTextEncoder(CAPTIONS, **{**SIZES, "vocab_size": 258}, embed_dim=EMBED).eval()
    transform = pickle.loads(pickle.dumps(enc.preprocess()))
    ids = torch.stack([transform("a cat"), transform("a dog")])
    assert ids.shape == (2, CTX)
    with torch.no_grad():
        torch.testing.assert_close(enc.encode_text(["a cat", "a dog"]), enc(ids))
    assert enc.forward_tokens(ids).shape == (2, CTX, EMBED)


def test_grad_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = ClipTextEncoder(IDS, **SIZES, embed_dim=EMBED)
    ckpt = ClipTextEncoder(IDS, **SIZES, embed_dim=EMBED, grad_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    ids = _token_ids()
    for enc in (plain, ckpt):
        enc(ids).square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_freeze_locks_the_tower():
    enc = ClipTextEncoder(IDS, **SIZES, embed_dim=EMBED, freeze=True)
    out = enc(_token_ids())
    assert not out.requires_grad
    assert not any(p.requires_grad for p in enc.parameters())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"width": 30}, "heads"),
        ({"layers": 0}, "layers"),
        ({"context_length": 8}, "context_length"),  # the data has 16 tokens
        ({"vocab_size": 100}, "vocab_size"),  # too small for the byte tokenizer
    ],
)
def test_bad_sizes_name_the_param(params, field):
    with pytest.raises(SpecError, match=rf"^model\.encoders\.text\.params\.{field}: "):
        ClipTextEncoder(IDS, **{**SIZES, **params})


def test_registered_schema_validates_literal_params():
    from modalforge.plugin import load_plugins
    from modalforge.spec.params import validate_params

    info = load_plugins(warn=False).registry.get("encoder", "clip_text")
    path = "model.encoders.text"
    assert validate_params(info, {"act": "quick_gelu"}, path)["tokenizer"] == "bytes"
    with pytest.raises(SpecError, match=r"model\.encoders\.text\.params\.act"):
        validate_params(info, {"act": "relu"}, path)
