"""An RT-1-style policy assembled in YAML: a timm backbone FiLM-conditioned on the instruction,
its feature map as tokens reduced by TokenLearner, fused with state and language, a Gaussian
mixture action head; built by the real builder from a ``domain: robotics`` spec."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from modalforge.pipeline import build_pipeline
from modalforge.plugin import load_plugins
from modalforge.spec import parse_spec
from modalforge_robotics.data import write_robomimic


def _episode(seed: int, steps: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "obs": {
            "agentview_image": rng.integers(0, 256, (steps, 32, 32, 3), dtype=np.uint8),
            "state": rng.standard_normal((steps, 3)).astype(np.float32),
        },
        "actions": rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
        "rewards": np.zeros(steps, dtype=np.float32),
        "success": True,
        "instruction": f"pick the {['red', 'blue'][seed % 2]} cup",
        "meta": {},
    }


def test_timm_film_tokens_token_learner_gmm_policy_trains(tmp_path):
    path = write_robomimic(tmp_path / "d.hdf5", [_episode(i) for i in range(4)], {})
    spec = parse_spec(
        {
            "name": "rt1ish",
            "domain": {"name": "robotics", "params": {"head": "gmm_action"}},
            "data": {
                "dataset": {"name": "robomimic", "params": {"path": str(path), "chunk": 2}},
                "batch_size": 6,
            },
            "model": {
                "encoders": {
                    "image_agentview": {
                        "name": "timm_visual",
                        "params": {
                            "model_name": "resnet10t",
                            "out_index": 2,
                            "tokens": True,
                            # another component than the preset's: its params are the spec's
                            "condition_on": ["instruction"],
                        },
                    }
                },
                "fusion": {
                    "name": "token_learner",
                    "params": {"dim": 16, "num_tokens": 4, "heads": 2, "layers": 1},
                },
                "head": {"name": "gmm_action", "params": {"modes": 3}},
            },
        }
    )
    assert spec.loss.name == "action_gmm_nll"  # the loss follows the spec's head
    pipe = build_pipeline(spec, load_plugins(warn=False).registry)
    model = pipe.model
    image = model.encoders["image_agentview"]
    assert image.condition_on == ("instruction",) and len(image.films) == 3
    assert model.fusion.in_features["image_agentview"].tokens
    # the instruction's text tokens are reduced too; the state vector is one token
    assert model.fusion.counts == {"image_agentview": 4, "state": 1, "instruction": 4}
    pipe.fit_transforms()
    batch = next(iter(DataLoader(pipe.load("train"), batch_size=6)))
    tokens = image.forward_tokens(batch["image_agentview"], torch.randn(6, 64))
    assert tokens.shape == (6, 4 * 4, image.output.dim)  # a 4 × 4 map at stride 8
    loss = pipe.loss(model(batch), batch).total
    assert torch.isfinite(loss)
    loss.backward()
    for film in image.films.values():  # language reaches the trunk's stages
        assert film.proj.weight.grad.abs().sum() > 0
    assert model.head.act(model(batch)).shape == (6, 2, 2)
