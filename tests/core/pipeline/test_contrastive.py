import pytest
import torch
from torch import Tensor

from modalforge.contracts import DatasetReader, Encoder, FeatureSpec, Target
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge.pipeline import ContrastiveModel, build_pipeline, embed_key, feature_key
from modalforge.registry import Registrar
from modalforge.spec import parse_spec
from tests.core.toy import FlattenEncoder, toy_registry, toy_spec


class CharEncoder(Encoder):
    """Raw captions → mean of character embeddings; tokenises in ``preprocess``."""

    accepts = (ModalityKind.TEXT,)

    def __init__(self, modality: Modality, dim: int = 8, length: int = 12) -> None:
        super().__init__(modality)
        self.emb = torch.nn.Embedding(128, dim)
        self.length = length

    @property
    def output(self) -> FeatureSpec:
        return FeatureSpec(self.emb.embedding_dim)

    def preprocess(self):  # noqa: ANN201
        return _Tokenize(self.length)

    def forward(self, x: Tensor) -> Tensor:
        return self.emb(x).mean(1)


class _Tokenize:
    def __init__(self, length: int) -> None:
        self.length = length

    def __call__(self, text: str) -> Tensor:
        ids = [min(ord(c), 127) for c in text][: self.length]
        return torch.tensor(ids + [0] * (self.length - len(ids)))


class Captions(DatasetReader):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        labels = torch.arange(6) % 3
        images = torch.randn(6, 1, 4, 4, generator=g)
        texts = [f"class {int(y)}" for y in labels]
        self._data = _Mixed(images, texts, labels)

    @property
    def modalities(self) -> dict[str, Modality]:
        return {
            "image": Modality("image", "image2d", (1, 4, 4)),
            "text": Modality("text", "text", (None,), dtype="str"),
        }

    @property
    def target(self) -> Target:
        return Target("multiclass", 3)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> "_Mixed":
        return self._data


class _Mixed(torch.utils.data.Dataset):
    def __init__(self, images: Tensor, texts: list[str], labels: Tensor) -> None:
        self.images, self.texts, self.labels = images, texts, labels

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "text": self.texts[i], "target": self.labels[i]}


def _registry():  # noqa: ANN202
    reg = toy_registry()
    r = Registrar(reg, "test")
    r.encoder("chars", CharEncoder)
    r.dataset("captions", Captions)
    return reg


def _spec(**model) -> dict:  # noqa: ANN003
    spec = toy_spec(data={"dataset": "captions", "batch_size": 3})
    spec["model"] = {
        "type": "contrastive",
        "encoders": {"image": {"name": "flatten", "params": {"dim": 5}}, "text": "chars"},
        **model,
    }
    spec["metrics"] = []
    return spec


def test_projects_to_shared_normalised_space():
    p = build_pipeline(parse_spec(_spec(embed_dim=4)), _registry())
    model = p.model
    assert isinstance(model, ContrastiveModel)
    assert model.projections["image"].weight.shape == (4, 5)
    assert model.projections["text"].weight.shape == (4, 8)
    assert model.projections["image"].bias is None
    batch = next(iter(torch.utils.data.DataLoader(p.load("train"), batch_size=6)))
    assert batch["text"].dtype == torch.long and batch["text"].shape == (6, 12)
    out = model(batch)
    for m in ("image", "text"):
        z = out[embed_key(m)]
        assert z.shape == (6, 4)
        torch.testing.assert_close(z.norm(dim=-1), torch.ones(6))
    raw = model.projections["text"](model.encoders["text"](batch["text"]))
    torch.testing.assert_close(out["embed.text"], raw / raw.norm(dim=-1, keepdim=True))
    # the encoders' features before the projection come out too (linear probes read them)
    torch.testing.assert_close(out[feature_key("image")], model.encoders["image"](batch["image"]))
    assert out[feature_key("text")].shape == (6, 8)
    torch.testing.assert_close(out["embed.image"], model.encode("image", batch["image"]))


def test_equal_dims_need_no_projection():
    spec = _spec()
    spec["model"]["encoders"]["image"]["params"]["dim"] = 8
    model = build_pipeline(parse_spec(spec), _registry()).model
    assert all(isinstance(p, torch.nn.Identity) for p in model.projections.values())


def test_unequal_dims_without_embed_dim():
    with pytest.raises(SpecError, match="model.embed_dim: encoder outputs differ"):
        build_pipeline(parse_spec(_spec()), _registry())


def test_raw_modality_needs_encoder_preprocessing():
    spec = _spec(embed_dim=4)
    spec["model"]["encoders"]["text"] = "flatten"  # accepts no text anyway
    with pytest.raises(SpecError, match="model.encoders.text"):
        build_pipeline(parse_spec(spec), _registry())

    class NoPre(CharEncoder):
        def preprocess(self):  # noqa: ANN201
            return None

    reg = _registry()
    Registrar(reg, "other").encoder("nopre", NoPre)
    spec["model"]["encoders"]["text"] = "nopre"
    with pytest.raises(SpecError, match="yields raw str samples for 'text'.*no preprocessing"):
        build_pipeline(parse_spec(spec), reg)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"type": "contrastive", "encoders": {"image": "flatten"}}, "two or more modalities"),
        (
            {"type": "contrastive", "encoders": {"a": "x", "b": "y"}, "head": "linear"},
            "remove fusion/head",
        ),
        ({"encoders": {"a": "x"}, "head": "linear", "embed_dim": 3}, "applies to `type: contr"),
        ({"type": "generator"}, "needs a `generator`"),
        ({"encoders": {"a": "x"}}, "or `type: contrastive`"),
    ],
)
def test_model_section_shapes(model, message):
    spec = toy_spec()
    spec["model"] = model
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


def test_supervised_pipeline_unchanged_by_transforms():
    p = build_pipeline(parse_spec(toy_spec()), toy_registry())
    assert p.transforms == {}
    assert p.load("train") is p.dataset.load("train")
    assert isinstance(p.model.encoders["image"], FlattenEncoder)


class _OwnLength:
    """Tokenises to the caption's own length (no padding); ``_PadBatch`` pads a batch."""

    def __call__(self, text: str) -> Tensor:
        return torch.tensor([min(ord(c), 127) for c in text] or [1])


class _PadBatch:
    def __call__(self, samples: list[Tensor]) -> Tensor:
        return torch.nn.utils.rnn.pad_sequence(samples, batch_first=True)


class DynamicCharEncoder(CharEncoder):
    """``CharEncoder`` whose captions keep their own length and are padded per batch."""

    def preprocess(self):  # noqa: ANN201
        return _OwnLength()

    def collate(self):  # noqa: ANN201
        return _PadBatch()


def test_the_pipeline_batches_a_raw_modality_with_its_encoders_collate(tmp_path):
    from modalforge.engine import Trainer
    from modalforge.evaluation import preprocess_batch

    reg = _registry()
    Registrar(reg, "dyn").encoder("dyn_chars", DynamicCharEncoder)
    spec = _spec(embed_dim=4)
    spec["model"]["encoders"]["text"] = "dyn_chars"
    pipeline = build_pipeline(parse_spec(spec), reg)
    assert list(pipeline.collates) == ["text"]  # the tensor image modality keeps default_collate
    loader = Trainer(pipeline, tmp_path / "run")._loader("train", train=False)
    texts = [f"class {i % 3}" for i in range(6)]
    for i, batch in enumerate(loader.epoch(0)):
        chunk = texts[3 * i : 3 * i + 3]
        assert batch["text"].shape == (3, max(len(t) for t in chunk))
        assert batch["image"].shape == (3, 1, 4, 4) and batch["target"].shape == (3,)
    prompts = preprocess_batch(pipeline.model, "text", ["a", "abc"])
    assert prompts.tolist() == [[97, 0, 0], [97, 98, 99]]
