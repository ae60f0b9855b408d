"""The real built-in plugins, loaded by entry point and assembled from a spec by the builder."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from torch.utils.data import DataLoader

from modalforge.pipeline import build_pipeline
from modalforge.plugin import load_plugins
from modalforge.spec import parse_spec
from tests.builtins import BUILTIN_PLUGINS

BUILTIN = BUILTIN_PLUGINS

SPEC = {
    "name": "machinery",
    "data": {
        "dataset": {
            "name": "synthetic",
            "params": {
                "num_samples": 24,
                "num_classes": 3,
                "image2d_size": 8,
                "volume_size": 8,
                "tabular_features": 5,
                "lowdim_features": 3,
                "missing_prob": 0.3,
            },
        },
        "batch_size": 6,
    },
    "model": {
        "encoders": {
            "image": {"name": "cnn", "params": {"widths": [4, 8]}},
            "volume": {"name": "monai_net", "params": {"network": "resnet10", "out_dim": 12}},
            "tabular": {"name": "mlp", "params": {"hidden_dims": [16], "out_dim": 7}},
            "lowdim": {"name": "mlp", "params": {"hidden_dims": [], "out_dim": 5}},
        },
        "fusion": "concat",
        "head": {"name": "classification", "params": {"hidden_dims": [10]}},
    },
    "loss": "cross_entropy",
    "metrics": ["accuracy", "macro_f1"],
}


def test_builtin_plugins_load_through_entry_points():
    host = load_plugins(warn=False)
    names = {r.name for r in host.records}
    assert BUILTIN <= names
    assert not [r.error for r in host.records if r.name in BUILTIN and not r.ok]
    for kind, name in [
        ("encoder", "timm"),
        ("encoder", "monai_net"),
        ("fusion", "concat"),
        ("dataset", "digits"),
        ("metric", "roc_auc"),
        ("loss", "mse"),
        ("encoder", "clip_text"),
        ("encoder", "hf_clip_image"),
        ("encoder", "open_clip_text"),
        ("encoder", "hf_text"),
    ]:
        assert (kind, name) in host.registry


def test_image_volume_tabular_lowdim_pipeline_forward_and_backward():
    host = load_plugins(warn=False)
    pipe = build_pipeline(parse_spec(SPEC), host.registry)
    model = pipe.model
    dims = {m: e.output.dim for m, e in model.encoders.items()}
    assert dims == {"image": 8, "volume": 12, "tabular": 7, "lowdim": 5}
    assert model.fusion.output.dim == model.head.in_dim == sum(dims.values())

    batch = next(iter(DataLoader(pipe.dataset.load("train"), batch_size=6)))
    assert set(batch) == {"image", "volume", "tabular", "lowdim", "target", "masks"}
    model.train()
    out = model(batch)
    assert out["features"].shape == (6, 32) and out["logits"].shape == (6, 3)
    loss = pipe.loss(out, batch)
    loss.total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reached {name}"
    for metric in pipe.metrics.values():
        metric.update(out, batch)
    assert set(pipe.metrics["accuracy"].compute()) == {"accuracy"}
    assert 0.0 <= pipe.metrics["macro_f1"].compute()["macro_f1"] <= 1.0


def test_loading_plugins_imports_no_heavy_dependency():
    code = (
        "import json, sys\n"
        "import modalforge\n"
        "from modalforge.plugin import load_plugins\n"
        "host = load_plugins(warn=False)\n"
        "heavy = [m for m in ('timm', 'transformers', 'monai', 'open_clip', 'tokenizers')\n"
        "         if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy, 'failed': [r.name for r in host.failures]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert not set(result["failed"]) & BUILTIN


def test_grad_is_finite_for_absent_modalities():
    host = load_plugins(warn=False)
    spec = json.loads(json.dumps(SPEC))
    spec["model"]["encoders"]["volume"] = {"name": "cnn", "params": {"widths": [4]}}
    pipe = build_pipeline(parse_spec(spec), host.registry)
    batch = next(iter(DataLoader(pipe.dataset.load("train"), batch_size=24)))
    n = len(batch["target"])
    batch["masks"]["tabular"][:] = False
    out = pipe.model(batch)
    assert torch.isfinite(out["logits"]).all()
    tab = slice(8 + 4, 8 + 4 + 7)  # image (8) + volume (4) come first in the concatenation
    assert torch.equal(out["features"][:, tab], torch.zeros(n, 7))


def _digits_spec(model_name: str) -> dict:
    return {
        "name": "digits",
        "data": {"dataset": {"name": "digits", "params": {"image_size": 16}}, "batch_size": 8},
        "model": {
            "encoders": {"image": {"name": "timm", "params": {"model_name": model_name}}},
            "head": "classification",
        },
        "loss": {"name": "cross_entropy", "params": {"label_smoothing": 0.1}},
        "metrics": ["accuracy"],
    }


def test_digits_with_a_timm_encoder_builds_from_the_spec():
    host = load_plugins(warn=False)
    pipe = build_pipeline(parse_spec(_digits_spec("test_resnet")), host.registry)
    batch = next(iter(DataLoader(pipe.dataset.load("test"), batch_size=8)))
    out = pipe.model(batch)
    assert out["logits"].shape == (8, 10)
    assert pipe.model.head.in_dim == pipe.model.encoders["image"].model.num_features


def test_unknown_timm_model_in_a_spec_names_the_field():
    import pytest

    from modalforge.errors import SpecError

    host = load_plugins(warn=False)
    with pytest.raises(SpecError, match=r"^model\.encoders\.image\.params\.model_name: .*resnet18"):
        build_pipeline(parse_spec(_digits_spec("resnet18x")), host.registry)


def test_every_builtin_component_has_a_typed_parameter_schema():
    from modalforge.spec.params import describe_params

    host = load_plugins(warn=False)
    infos = [i for i in host.registry if i.provider in BUILTIN]
    assert len(infos) >= 20
    for info in infos:
        describe_params(info)  # raises TypeError on an untyped parameter
        assert info.summary, f"{info.kind} {info.name} has no docstring summary"
