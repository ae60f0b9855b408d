"""ViT-B/32 CLIP training step: modalforge vs open_clip, eager and compiled, in one run.

modalforge side: timm ``vit_base_patch32_clip_224`` + the built-in ``clip_text`` tower (OpenAI
CLIP's text architecture, 77 tokens), built through the registry, in ``ContrastiveModel`` with the
``clip`` loss, AdamW from the engine (``build_optimizers``) and the engine's ``StepContext`` step.
open_clip side: ``open_clip.create_model("ViT-B-32")`` (random init, nothing downloaded),
``ClipLoss`` and fused AdamW. Same batch, bf16 autocast, synthetic data already on the GPU (the
step is timed, not the data pipeline). Reports images/s and the modalforge / open_clip ratio.

GPU: ``python benchmarks/gpu_clip_vitb32.py`` (batch 256, bf16).
CPU smoke check: ``python benchmarks/gpu_clip_vitb32.py --device cpu --batch 2 --steps 2
--warmup 1 --precision fp32 --no-compile``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from modalforge.engine.config import TrainConfig
from modalforge.engine.runtime import Precision
from modalforge.engine.schedule import build_optimizers
from modalforge.engine.step import StepContext
from modalforge.modality import Modality
from modalforge.pipeline import ContrastiveModel, instantiate
from modalforge.plugin import get_registry

IMAGE = Modality("image", "image2d", (3, 224, 224))
TEXT = Modality("text", "text", (77,), dtype="int64")


def synthetic_batch(batch: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 224, 224, generator=g)
    tokens = torch.randint(1, 49406, (batch, 77), generator=g)
    lengths = torch.randint(5, 77, (batch,), generator=g)
    tokens[torch.arange(batch), lengths] = 49407  # end-of-text: the largest id, pooled
    tokens[torch.arange(77)[None, :] > lengths[:, None]] = 0
    return {"image": images.to(device), "text": tokens.to(device)}


def modalforge_step(args: argparse.Namespace, device: torch.device) -> Callable[[dict], None]:
    registry = get_registry()
    image = instantiate(
        registry.get("encoder", "timm"),
        {"model_name": "vit_base_patch32_clip_224", "proj_dim": 512},
        "image",
        modality=IMAGE,
    )
    text = instantiate(registry.get("encoder", "clip_text"), {}, "text", modality=TEXT)
    model = ContrastiveModel({"image": image, "text": text}, embed_dim=512).to(device)
    loss = instantiate(registry.get("loss", "clip"), {}, "loss").to(device)
    cfg = TrainConfig(lr=5e-4, weight_decay=0.2, precision=args.precision)
    precision = Precision(args.precision, device)
    ctx = StepContext(build_optimizers(model, loss, cfg, device), precision=precision)
    forward = torch.compile(model) if args.compile else model

    def step(batch: dict) -> None:
        with precision.context():
            out = loss(forward(batch), batch)
        ctx.backward(out.total)
        ctx.step("model")
        loss.after_optimizer_step()
        ctx.finish()

    return step


def open_clip_step(args: argparse.Namespace, device: torch.device) -> Callable[[dict], None]:
    import open_clip
    from open_clip.loss import ClipLoss

    model = open_clip.create_model("ViT-B-32", pretrained=None).to(device)
    loss_fn = ClipLoss()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "logit_scale" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "logit_scale" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.2}, {"params": rest, "weight_decay": 0.0}],
        lr=5e-4,
        fused=device.type == "cuda",
    )
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    forward = torch.compile(model) if args.compile else model

    def step(batch: dict) -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            img, txt, scale = forward(batch["image"], batch["text"])
            total = loss_fn(img, txt, scale)
        total.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)

    return step


def time_steps(step: Callable[[dict], None], batch: dict, args: argparse.Namespace) -> float:
    sync = torch.cuda.synchronize if batch["image"].is_cuda else (lambda: None)
    for _ in range(args.warmup):
        step(batch)
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step(batch)
    sync()
    return args.batch * args.steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--no-compile", dest="with_compile", action="store_false")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    batch = synthetic_batch(args.batch, device)
    results: dict[str, float] = {}
    for compiled in (False, True) if args.with_compile else (False,):
        args.compile = compiled
        mode = "compiled" if compiled else "eager"
        for name, build in (("modalforge", modalforge_step), ("open_clip", open_clip_step)):
            torch.manual_seed(0)
            step = build(args, device)
            results[f"{name}_{mode}"] = time_steps(step, batch, args)
            del step
            if device.type == "cuda":
                torch.cuda.empty_cache()
            print(f"{name:<11} {mode:<9} {results[f'{name}_{mode}']:9.1f} images/s", flush=True)
    for mode in ("eager", "compiled"):
        if f"modalforge_{mode}" in results:
            ratio = results[f"modalforge_{mode}"] / results[f"open_clip_{mode}"]
            results[f"ratio_{mode}"] = ratio
            print(f"ratio modalforge / open_clip ({mode}): {ratio:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "images_per_s": results}, fh, indent=2)


if __name__ == "__main__":
    main()
