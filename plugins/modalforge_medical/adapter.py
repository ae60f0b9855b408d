"""The ``medical`` domain adapter: what ``domain: medical`` gives a spec, and the catalogue
``modalforge components adapter medical`` shows.

Defaults follow the modalities the spec's data declares: each volume (a ``volume`` column of a
manifest, or ``synthetic_studies``' ``ct``) gets a MONAI DenseNet and intensity scaling; each
X-ray-style image a 2-D DenseNet; a report a small byte-level text transformer; a clinical table
median imputation with missing-value indicators, standardisation (both fitted on the training
split only) and an MLP. Supervised pipelines report the clinical metrics (AUC, AP, sensitivity
and specificity, calibration, with bootstrap intervals), contrastive ones zero-shot findings
and retrieval. Every default is overridable in the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modalforge.contracts import DomainAdapter
from modalforge.contracts.adapter import spec_dataset
from modalforge.modality import Modality, ModalityKind

LOADER_KINDS = {
    "volume": ModalityKind.VOLUME3D,
    "image": ModalityKind.IMAGE2D,
    "text": ModalityKind.TEXT,
    "tabular": ModalityKind.TABULAR,
}


class MedicalDomain(DomainAdapter):
    """Medical imaging: CT / MR volumes, X-ray-style images, reports and clinical tables.

    ``volume_network`` and ``image_network`` pick the MONAI network of the default volume and
    image encoders; ``intensity_range`` is the stored intensity window scaled to ``[0, 1]``
    (e.g. ``[-1000, 1000]`` Hounsfield units for CT; by default intensities are left alone,
    except ``synthetic_studies``' volumes, whose stored range 0–1000 is known).
    """

    def __init__(
        self,
        volume_network: str = "densenet121",
        image_network: str = "densenet121",
        intensity_range: tuple[float, float] | None = None,
        text_context: int = 256,
    ) -> None:
        if intensity_range is not None and intensity_range[0] >= intensity_range[1]:
            raise ValueError(
                f"intensity_range must be [low, high] with low < high, got {intensity_range}"
            )
        self.volume_network = volume_network
        self.image_network = image_network
        self.intensity_range = intensity_range
        self.text_context = text_context

    def describe(self) -> str:
        return (
            "Medical imaging: CT/MR volumes (NIfTI, DICOM series), X-ray-style images, radiology "
            "reports and clinical tables, read from a manifest of studies; MONAI networks and "
            "transforms; clinical metrics with bootstrap confidence intervals; zero-shot "
            "findings from prompt pairs; saliency maps with `modalforge explain`."
        )

    # ------------------------------------------------------------------ catalogue
    @property
    def modalities(self) -> dict[str, Modality]:
        return {
            "ct": Modality("ct", ModalityKind.VOLUME3D, (1, None, None, None)),
            "mr": Modality("mr", ModalityKind.VOLUME3D, (1, None, None, None)),
            "xray": Modality("xray", ModalityKind.IMAGE2D, (1, None, None)),
            "report": Modality("report", ModalityKind.TEXT, (None,), dtype="str"),
            "clinical": Modality("clinical", ModalityKind.TABULAR, (None,)),
        }

    @property
    def readers(self) -> tuple[str, ...]:
        return ("manifest", "synthetic_studies", "volume", "image", "text", "tabular")

    @property
    def transforms(self) -> tuple[str, ...]:
        return (
            "orientation",
            "spacing",
            "scale_intensity_range",
            "ct_window",
            "normalize_intensity",
            "crop_foreground",
            "spatial_resize",
            "resize_with_pad_or_crop",
            "rand_flip",
            "rand_rotate90",
            "rand_affine",
            "rand_gaussian_noise",
            "rand_scale_intensity",
            "to_tensor",
            "impute",
            "standardize",
        )

    @property
    def recommended(self) -> dict[str, str]:
        return {
            "encoder.volume": "monai_net",
            "encoder.volume_tokens": "monai_vit",
            "encoder.volume_multiscale": "monai_swin",
            "encoder.xray": "monai_net",
            "encoder.report": "hf_text",
            "encoder.clinical": "mlp",
            "fusion": "concat",
            "fusion.tokens": "cross_attention",
            "loss.contrastive": "clip",
        }

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("clinical", "zeroshot_findings", "roc_auc", "linear_probe")

    # ------------------------------------------------------------------ defaults
    def preset(self) -> dict[str, Any]:
        """The defaults of a spec whose data declares ``ct``, ``xray``, ``report`` and
        ``clinical`` (what ``modalforge components adapter medical`` shows)."""
        kinds = {m.name: m.kind for m in self.modalities.values() if m.name != "mr"}
        return self._defaults(kinds, {"model": {"type": "supervised"}})

    def preset_for(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._defaults(declared_kinds(spec), spec)

    def _intensity(self, spec: Mapping[str, Any]) -> tuple[float, float] | None:
        if self.intensity_range is None and spec_dataset(spec).get("name") == "synthetic_studies":
            return (0.0, 1000.0)
        return self.intensity_range

    def _defaults(self, kinds: Mapping[str, ModalityKind], spec: Mapping[str, Any]) -> dict:
        model = spec.get("model") or {}
        contrastive = isinstance(model, Mapping) and model.get("type") == "contrastive"
        encoders: dict[str, Any] = {}
        eval_steps: dict[str, list[Any]] = {}
        for name, kind in kinds.items():
            if kind == ModalityKind.VOLUME3D:
                encoders[name] = {"name": "monai_net", "params": {"network": self.volume_network}}
                window = self._intensity(spec)
                if window is not None:
                    low, high = window
                    eval_steps[name] = [
                        {
                            "name": "scale_intensity_range",
                            "params": {
                                "a_min": low,
                                "a_max": high,
                                "b_min": 0.0,
                                "b_max": 1.0,
                                "clip": True,
                            },
                        }
                    ]
            elif kind == ModalityKind.IMAGE2D:
                encoders[name] = {"name": "monai_net", "params": {"network": self.image_network}}
                eval_steps[name] = ["to_tensor"]
            elif kind == ModalityKind.TEXT:
                encoders[name] = {
                    "name": "clip_text",
                    "params": {
                        "context_length": self.text_context,
                        "vocab_size": 260,
                        "width": 128,
                        "heads": 4,
                        "layers": 2,
                        "embed_dim": 128,
                    },
                }
            elif kind == ModalityKind.TABULAR:
                encoders[name] = {"name": "mlp", "params": {"hidden_dims": [64], "out_dim": 64}}
                eval_steps[name] = [
                    {"name": "impute", "params": {"strategy": "median", "indicators": True}},
                    "standardize",
                ]
        out: dict[str, Any] = {"model": {"encoders": encoders}}
        if eval_steps:
            out["data"] = {"transforms": {"eval": eval_steps}}
        if contrastive:
            out["metrics"] = ["zeroshot_findings"] if _multilabel(spec) else ["retrieval"]
        else:
            out["metrics"] = ["clinical"]
        return out


def declared_kinds(spec: Mapping[str, Any]) -> dict[str, ModalityKind]:
    """The modalities a spec's data declares, by name, where the reader says so in the spec:
    a ``manifest``'s columns (by loader) or ``synthetic_studies``' parts."""
    dataset = spec_dataset(spec)
    params = dataset.get("params") or {}
    if not isinstance(params, Mapping):
        return {}
    if dataset.get("name") == "synthetic_studies":
        image = "xray" if params.get("dims") == 2 else "ct"
        parts = params.get("parts") or ["image", "report"]
        names = {"image": image, "report": "report", "clinical": "clinical"}
        kinds = {"image": LOADER_KINDS["volume" if image == "ct" else "image"]}
        kinds |= {"report": ModalityKind.TEXT, "clinical": ModalityKind.TABULAR}
        return {names[p]: kinds[p] for p in parts if p in names}
    if dataset.get("name") == "manifest":
        columns = params.get("modalities") or {}
        if not isinstance(columns, Mapping):
            return {}
        return {
            name: LOADER_KINDS[col["loader"]]
            for name, col in columns.items()
            if isinstance(col, Mapping) and col.get("loader") in LOADER_KINDS
        }
    return {}


def _multilabel(spec: Mapping[str, Any]) -> bool:
    dataset = spec_dataset(spec)
    params = dataset.get("params") or {}
    if not isinstance(params, Mapping):
        return False
    target = params.get("target")
    if dataset.get("name") == "synthetic_studies":
        return target in (None, "findings")
    return isinstance(target, Mapping) and target.get("kind") == "multilabel"
