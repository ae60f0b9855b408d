"""Human-readable summary of an assembled pipeline, with parameter counts."""

from __future__ import annotations

from torch import nn

from modalforge.pipeline import ContrastiveModel, MultimodalModel, Pipeline


def count(module: nn.Module | None) -> tuple[int, int]:
    """(total, trainable) parameters."""
    if module is None:
        return 0, 0
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _fmt(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1_000_000 else f"{n:,}"


def _data_lines(p: Pipeline) -> list[str]:
    """The split sizes (when ``data.split`` divides the data) and each modality's transforms."""
    lines = []
    split = p.spec.data.split
    if split is not None:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in p.dataset.indices.items())
        how = [f"group by {split.group}"] if split.group else []
        if p.dataset.labels(p.dataset.source) is not None and split.stratify is not False:
            how.append("stratified")
        if split.folds:
            how.append(f"fold {split.fold} of {split.folds}")
        extra = f" ({', '.join(how)})" if how else ""
        lines.append(f"│  ├─ split {p.dataset.source!r}: {sizes}{extra}")
    t = p.data_transforms
    for name in t.modalities:
        chain = [
            f"{phase}: {', '.join(type(s).__name__ for s in steps[name])}"
            for phase, steps in (("train", t.train), ("eval", t.eval))
            if name in steps
        ]
        if chain:
            after = t.modalities[name]
            shape = "" if after == p.dataset.modalities[name] else f" → {after.describe()}"
            lines.append(f"│  ├─ transforms.{name}: {'; '.join(chain)}{shape}")
    return lines


def describe_pipeline(p: Pipeline) -> str:
    spec = p.spec
    ds = p.dataset
    mods = "; ".join(m.describe() for m in ds.modalities.values())
    target = ds.target
    tdesc = f"{target.kind}, {target.num_outputs} outputs" if target else "no target"
    total, trainable = count(p.model)
    lines = [
        f"pipeline {spec.name}",
        f"├─ data: {spec.data.dataset.name}  [{mods}]  target: {tdesc}",
        *_data_lines(p),
        f"├─ model: {type(p.model).__name__}  {_fmt(total)} params ({_fmt(trainable)} trainable)",
    ]
    if isinstance(p.model, MultimodalModel):
        for name, enc in p.model.encoders.items():
            ref = spec.model.encoders[name]
            lines.append(
                f"│  ├─ encoders.{name}: {ref.name} ({type(enc).__name__}) → {enc.output.dim}"
                f"{' +tokens' if enc.output.tokens else ''}  {_fmt(count(enc)[0])} params"
            )
        if p.model.fusion is not None:
            f = p.model.fusion
            dims = " + ".join(f"{m}:{s.dim}" for m, s in f.in_features.items())
            lines.append(
                f"│  ├─ fusion: {spec.model.fusion.name} ({dims}) → {f.output.dim}"
                f"  {_fmt(count(f)[0])} params"
            )
        head = p.model.head
        lines.append(
            f"│  └─ head: {spec.model.head.name} ({type(head).__name__}) {head.in_dim} → "
            f"{head.output_key}  {_fmt(count(head)[0])} params"
        )
    elif isinstance(p.model, ContrastiveModel):
        for i, (name, enc) in enumerate(p.model.encoders.items()):
            branch = "└─" if i == len(p.model.encoders) - 1 else "├─"
            lines.append(
                f"│  {branch} encoders.{name}: {spec.model.encoders[name].name} "
                f"({type(enc).__name__}) → {enc.output.dim} → embed {p.model.embed_dim}"
                f"  {_fmt(count(enc)[0] + count(p.model.projections[name])[0])} params"
            )
    else:
        lines.append(f"│  └─ generator: {spec.model.generator.name}")
    if p.loss is not None:
        lt = count(p.loss)[0]
        lines.append(f"├─ loss: {spec.loss.name}" + (f"  {_fmt(lt)} params" if lt else ""))
    lines.append(f"└─ metrics: {', '.join(p.metrics) or '-'}")
    return "\n".join(lines)
