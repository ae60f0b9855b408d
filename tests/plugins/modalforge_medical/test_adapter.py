"""The ``medical`` domain: defaults follow the spec's declared modalities, the spec wins, and its
catalogue names only registered components."""

from __future__ import annotations

from modalforge.plugin import get_registry
from modalforge.spec import parse_spec
from modalforge_medical import MedicalDomain
from modalforge_medical.adapter import declared_kinds

MANIFEST = {
    "name": "manifest",
    "params": {
        "path": "studies.csv",
        "modalities": {
            "chest_ct": {"loader": "volume", "column": "ct"},
            "findings_text": {"loader": "text", "column": "report"},
            "labs": {"loader": "tabular", "columns": ["age", "crp"]},
        },
        "target": {"kind": "multiclass", "column": "diagnosis"},
    },
}


def test_defaults_follow_the_manifest_modalities():
    spec = {"domain": "medical", "data": {"dataset": MANIFEST}}
    assert {k: str(v) for k, v in declared_kinds(spec).items()} == {
        "chest_ct": "volume3d",
        "findings_text": "text",
        "labs": "tabular",
    }
    defaults = MedicalDomain(intensity_range=(-1000.0, 1000.0)).preset_for(spec)
    encoders = defaults["model"]["encoders"]
    assert encoders["chest_ct"] == {"name": "monai_net", "params": {"network": "densenet121"}}
    assert encoders["labs"]["name"] == "mlp" and encoders["findings_text"]["name"] == "clip_text"
    steps = defaults["data"]["transforms"]["eval"]
    assert steps["chest_ct"][0]["params"]["a_min"] == -1000.0
    assert [s if isinstance(s, str) else s["name"] for s in steps["labs"]] == [
        "impute",
        "standardize",
    ]
    assert defaults["metrics"] == ["clinical"]  # supervised: the clinical table
    assert "chest_ct" not in MedicalDomain().preset_for(spec).get("data", {}).get(
        "transforms", {}
    ).get("eval", {})  # real CT intensities are left alone unless a window is given


def test_contrastive_specs_get_zero_shot_findings():
    spec = {
        "domain": "medical",
        "model": {"type": "contrastive"},
        "data": {"dataset": {"name": "synthetic_studies", "params": {"dims": 3}}},
    }
    defaults = MedicalDomain().preset_for(spec)
    assert defaults["metrics"] == ["zeroshot_findings"]
    assert set(defaults["model"]["encoders"]) == {"ct", "report"}
    ct = defaults["data"]["transforms"]["eval"]["ct"][0]["params"]
    assert (ct["a_min"], ct["a_max"]) == (0.0, 1000.0)  # the synthetic volumes' stored range


def test_the_spec_overrides_every_default():
    spec = parse_spec(
        {
            "name": "x",
            "domain": {"name": "medical", "params": {"volume_network": "resnet18"}},
            "data": {
                "dataset": {
                    "name": "synthetic_studies",
                    "params": {"dims": 3, "parts": ["image", "clinical"], "target": "diagnosis"},
                }
            },
            "model": {
                "encoders": {"ct": {"name": "monai_net", "params": {"out_dim": 32}}},
                "fusion": "concat",
                "head": "classification",
            },
            "loss": "cross_entropy",
            "metrics": ["roc_auc"],
        }
    )
    ct = spec.model.encoders["ct"]
    assert ct.name == "monai_net" and ct.params == {"network": "resnet18", "out_dim": 32}
    assert spec.model.encoders["clinical"].name == "mlp"
    assert [m.name for m in spec.metrics] == ["roc_auc"]
    assert [s.name for s in spec.data.transforms.eval["clinical"]] == ["impute", "standardize"]


def test_catalogue_names_registered_components():
    assert MedicalDomain().missing(get_registry()) == []
