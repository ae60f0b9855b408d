"""Loading the first stage (a trained ``vqvae`` run) as a frozen image tokenizer for ``dalle``.

The architecture comes from the spec the run was trained with: ``modalforge train`` writes it
as ``<run>/spec.yaml``, next to ``checkpoints/``. Its ``model.generator`` is looked up in the
registry (so a renamed or third-party VQ-VAE subclass works) and must build a :class:`VQVAE`;
the weights come from the checkpoint. Reading the run's own spec means the second stage never
repeats (and can never contradict) the tokenizer's hyper-parameters. A checkpoint copied away
from its run can name its spec with ``tokenizer_spec``.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import safetensors
import torch

from modalforge.engine.checkpoint_files import MODEL_FILE
from modalforge.errors import CheckpointError, ModalforgeError, SpecError
from modalforge.modality import Modality
from modalforge_generators.vqvae import VQVAE

SPEC_FILE = "spec.yaml"
_STAGE1 = "train a 'vqvae' first (e.g. recipes/digits_vqvae.yaml) and set tokenizer_checkpoint "
_STAGE1 += "to its run folder (runs/<name>) or one of its checkpoints/step_<N> folders"


def find_run_spec(checkpoint: Path) -> Path | None:
    """``spec.yaml`` of the run a step folder belongs to (``<run>/checkpoints/step_N``)."""
    for folder in (checkpoint, checkpoint.parent, checkpoint.parent.parent):
        if (folder / SPEC_FILE).is_file():
            return folder / SPEC_FILE
    return None


def load_frozen_vqvae(
    checkpoint: str,
    image: Modality,
    *,
    field: str,
    spec_path: str | None = None,
) -> VQVAE:
    """The VQ-VAE of ``checkpoint``, for images like ``image``, frozen and in eval mode.

    Errors name ``<field>.tokenizer_checkpoint`` (or ``.tokenizer_spec``) and say what to pass.
    """
    from modalforge.engine import load_checkpoint, resolve_checkpoint
    from modalforge.plugin import get_registry
    from modalforge.spec import load_spec
    from modalforge.spec.params import validate_params

    ckpt_field = f"{field}.tokenizer_checkpoint"
    try:
        folder = resolve_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise SpecError(ckpt_field, exc.message, hint=_STAGE1) from None
    spec_field = f"{field}.tokenizer_spec"
    spec_file = Path(spec_path) if spec_path else find_run_spec(folder)
    if spec_file is None:
        raise SpecError(
            spec_field,
            f"no {SPEC_FILE} found beside checkpoint {folder} (looked in it, its parent and "
            "its run folder), so the tokenizer's architecture is unknown",
            hint="set tokenizer_spec to the YAML spec the VQ-VAE run was trained with",
        )
    try:
        spec = load_spec(spec_file)
    except ModalforgeError as exc:
        raise SpecError(spec_field, f"cannot read {spec_file}: {exc}", hint=_STAGE1) from None
    ref = spec.model.generator
    what = f"a {spec.model.type} model" if ref is None else f"generator {ref.name!r}"
    registry = get_registry()
    info = (
        registry.get("generator", ref.name) if ref and ("generator", ref.name) in registry else None
    )
    factory = info.factory if info is not None else None
    if not (inspect.isclass(factory) and issubclass(factory, VQVAE)):
        raise SpecError(
            ckpt_field,
            f"checkpoint {folder} was trained as {what} ({spec_file}), not as a VQ-VAE image "
            "tokenizer",
            hint=_STAGE1,
        )
    try:
        params = validate_params(info, dict(ref.params), f"{spec_file}: model.generator")
    except SpecError as exc:
        raise SpecError(spec_field, str(exc), hint=_STAGE1) from None
    _check_image_shape(folder, tuple(image.shape), ckpt_field)
    vq_image = str(params.get("image", "image"))
    vqvae = factory(modalities={vq_image: dataclasses.replace(image, name=vq_image)}, **params)
    try:
        load_checkpoint(folder, model=vqvae)
    except CheckpointError as exc:
        raise SpecError(ckpt_field, exc.message, hint=exc.hint) from None
    vqvae.requires_grad_(False)
    return vqvae.eval()


def _check_image_shape(folder: Path, want: tuple[int, ...], field: str) -> None:
    """The images of this data set must have the shape the tokenizer was trained on."""
    try:
        with safetensors.safe_open(str(folder / MODEL_FILE), framework="pt") as f:
            shape = f.get_tensor("image_shape") if "image_shape" in f.keys() else None  # noqa: SIM118
    except Exception as exc:  # noqa: BLE001 - the parser raises its own error types
        raise SpecError(field, f"{folder / MODEL_FILE} cannot be read ({exc})") from None
    if shape is None:
        return  # load_checkpoint reports the architecture mismatch
    got = tuple(int(s) for s in torch.as_tensor(shape).tolist())
    if got != want:
        raise SpecError(
            field,
            f"the tokenizer in {folder} was trained on images {got}, this data set's are {want}",
            hint="train the VQ-VAE on the same data set and image size as the transformer",
        )
