"""MONAI steps declared in a YAML spec: the chain and the encoder's size, bad parameters named by
field, MetaTensors from the reader turned into plain tensors in the engine's batches, random
steps reproducible under the engine's seeding, and the cache over a MONAI prefix."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

monai = pytest.importorskip("monai")
from monai import transforms as T  # noqa: E402
from monai.data import MetaTensor  # noqa: E402

from modalforge.contracts import DatasetReader, Target  # noqa: E402
from modalforge.engine.data import EpochLoader  # noqa: E402
from modalforge.errors import SpecError, UnknownComponentError  # noqa: E402
from modalforge.modality import Modality  # noqa: E402
from modalforge.pipeline import build_pipeline  # noqa: E402
from modalforge.registry import Registrar  # noqa: E402
from modalforge.spec import load_spec  # noqa: E402
from modalforge_medical import transforms as medical_transforms  # noqa: E402
from tests.core.toy import toy_registry  # noqa: E402

N = 8
AFFINE = torch.diag(torch.tensor([2.0, 1.0, 0.5, 1.0], dtype=torch.float64))
AFFINE[0, 0] = -2.0  # stored left-to-right flipped: orientation to RAS turns it round


class Volumes(DatasetReader):
    """Small CT-like MetaTensor volumes with an anisotropic, flipped affine (as a reader of
    NIfTI files returns them)."""

    @property
    def modalities(self) -> dict[str, Modality]:
        return {"ct": Modality("ct", "volume3d", (1, 6, 8, 10))}

    @property
    def target(self) -> Target:
        return Target("multiclass", 2)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> Dataset:
        return _Volumes()


class _Volumes(Dataset):
    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict:
        return {"ct": volume(i), "target": i % 2}


def volume(i: int) -> MetaTensor:
    g = torch.Generator().manual_seed(i)
    return MetaTensor(torch.rand(1, 6, 8, 10, generator=g) * 1400 - 1000, affine=AFFINE.clone())


def _registry():
    registry = toy_registry()
    medical_transforms.register(Registrar(registry, "medical"))
    Registrar(registry, "test").dataset("volumes", Volumes)
    return registry


YAML = """
name: ct
data:
  dataset: volumes
  batch_size: 4
  transforms:
    pre:
      ct:
        - {name: orientation, params: {axcodes: RAS}}
        - {name: spacing, params: {pixdim: [2.0, 2.0, 2.0]}}
        - {name: ct_window, params: {level: -600, width: 1500}}
        - {name: resize_with_pad_or_crop, params: {spatial_size: [6, 4, 4]}}
    train:
      ct:
        - {name: rand_flip, params: {prob: 0.5}}
        - {name: rand_gaussian_noise, params: {prob: 1.0, std: 0.05}}
model:
  encoders: {ct: {name: flatten, params: {dim: 4}}}
  head: linear
loss: ce
metrics: [accuracy]
train: {epochs: 1, progress: false}
"""


def _spec(tmp_path, text=YAML, name="spec.yaml", overrides=()):
    path = tmp_path / name
    path.write_text(text)
    return load_spec(path, list(overrides))


def _loader(dataset, seed, workers=0, shuffle=True):
    return EpochLoader(
        dataset,
        batch_size=4,
        shuffle=shuffle,
        seed=seed,
        num_workers=workers,
        drop_last=False,
        pin_memory=False,
        field="data.train_split",
    )


REFERENCE = T.Compose(
    [
        T.Orientationd(keys=["ct"], axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
        T.Spacingd(keys=["ct"], pixdim=(2.0, 2.0, 2.0)),
        T.ScaleIntensityRanged(keys=["ct"], a_min=-1350, a_max=150, b_min=0, b_max=1, clip=True),
        T.ResizeWithPadOrCropd(keys=["ct"], spatial_size=(6, 4, 4)),
    ]
)


def test_a_yaml_chain_builds_sizes_the_encoder_and_equals_monai(tmp_path):
    pipeline = build_pipeline(_spec(tmp_path), _registry())
    assert pipeline.modalities["ct"].shape == (1, 6, 4, 4)  # the fixed size after spacing
    assert pipeline.model.encoders["ct"].modality.shape == (1, 6, 4, 4)
    data = pipeline.load("test")
    for i in range(3):
        got = data[i]["ct"]
        assert type(got) is torch.Tensor
        torch.testing.assert_close(got, REFERENCE({"ct": volume(i)})["ct"].as_tensor())
    with pytest.warns(UserWarning, match="assuming affine to be identity"):
        no_affine = REFERENCE({"ct": volume(0).as_tensor()})["ct"].as_tensor()
    assert not torch.equal(no_affine, data[0]["ct"])  # the affine decided the resampling


def test_batches_from_the_engine_loader_are_plain_tensors(tmp_path):
    pipeline = build_pipeline(_spec(tmp_path), _registry())
    for train in (False, True):
        for batch in _loader(pipeline.load("train", train=train), seed=0).epoch(0):
            assert type(batch["ct"]) is torch.Tensor
            assert batch["ct"].shape[1:] == (1, 6, 4, 4)


def test_random_steps_follow_the_engine_seed_in_loader_workers(tmp_path):
    pipeline = build_pipeline(_spec(tmp_path), _registry())

    def batches(seed):
        # no shuffling: the same samples in the same order, only the worker seeds differ
        loader = _loader(pipeline.load("train", train=True), seed=seed, workers=1, shuffle=False)
        return torch.cat([b["ct"] for b in loader.epoch(1)])

    first, again, other = batches(0), batches(0), batches(1)
    torch.testing.assert_close(first, again)  # same seed: the same augmented samples
    assert not torch.allclose(first, other)  # another seed: other ones


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        (
            "data.transforms.train.ct.0.name=rand_flp",
            UnknownComponentError,
            r"data\.transforms\.train\.ct\.0\.name.*rand_flip",
        ),
        (
            "data.transforms.train.ct.0.params.prob=often",
            SpecError,
            r"data\.transforms\.train\.ct\.0\.params\.prob",
        ),
        (
            "data.transforms.pre.ct.1.params.pixdim=[1.0, 1.0]",
            SpecError,
            r"data\.transforms\.pre\.ct\.1: .*pixdim: 2 values for the 3 spatial axes",
        ),
        (
            "data.transforms.pre.ct.1.params.mode=cubic",
            SpecError,
            r"data\.transforms\.pre\.ct\.1\.params\.mode",
        ),
        (
            "data.transforms.pre.ct.0.params.axcodes=RAX",
            SpecError,
            r"data\.transforms\.pre\.ct\.0: .*axcodes",
        ),
        (
            "data.transforms.pre.ct.2=rand_scale_intensity",
            SpecError,
            r"data\.transforms\.pre\.ct\.2: 'rand_scale_intensity' is random",
        ),
        (
            "data.transforms.train.ct.0={name: spatial_resize, params: {spatial_size: 3}}",
            SpecError,
            r"data\.transforms\.train\.ct: the augmentation turns",
        ),
    ],
)
def test_bad_transform_specs_name_the_field(tmp_path, override, error, match):
    with pytest.raises(error, match=match):
        build_pipeline(_spec(tmp_path, overrides=[override]), _registry())


def test_a_turn_of_unequal_axes_is_refused_as_augmentation(tmp_path):
    text = YAML.replace("{name: rand_flip, params: {prob: 0.5}}", "rand_rotate90")
    with pytest.raises(SpecError, match="the augmentation turns ct .*1×6×4×4.* into .*1×\\?×\\?"):
        build_pipeline(_spec(tmp_path, text), _registry())


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_cached_monai_prefix_equals_the_uncached_pipeline(tmp_path, mode):
    plain = build_pipeline(_spec(tmp_path), _registry())
    overrides = [f"data.cache={mode}"]
    if mode == "disk":
        overrides.append(f"data.cache_dir={tmp_path / 'cache'}")
    cached = build_pipeline(_spec(tmp_path, overrides=overrides), _registry())
    for train in (True, False):
        want = _loader(plain.load("train", train=train), seed=3).epoch(0)
        got = _loader(cached.load("train", train=train), seed=3).epoch(0)
        torch.manual_seed(0)
        want = [b["ct"] for b in want]
        torch.manual_seed(0)
        got = [b["ct"] for b in got]
        for a, b in zip(want, got, strict=True):
            torch.testing.assert_close(a, b)


def test_cache_refuses_spacing_after_the_augmentation(tmp_path):
    text = YAML.replace("    pre:\n", "    eval:\n")  # spacing now runs after rand_flip
    build_pipeline(_spec(tmp_path, text), _registry()).load("train", train=True)  # uncached: ok
    cached = build_pipeline(_spec(tmp_path, text, overrides=["data.cache=memory"]), _registry())
    with pytest.raises(SpecError, match=r"data\.transforms\.eval\.ct\.0: Orientation reads"):
        cached.load("train", train=True)
    assert cached.load("test")[0]["ct"].shape == (1, 6, 4, 4)  # evaluation has no random step
