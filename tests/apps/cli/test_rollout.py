"""``modalforge rollout`` end to end on the built-in tabletop: a tiny policy trained from expert
demonstrations, baselines, instruction shuffling, the GIF report, and bad input (exit 2)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from modalforge.plugin import set_host
from modalforge_apps.cli import main

RECIPE = "recipe:robotics_tabletop_reach"
TINY = [
    "data.dataset.params.episodes=6",
    "data.dataset.params.val_episodes=2",
    "data.batch_size=16",
    "train.epochs=1",
    "train.progress=false",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A policy trained for one epoch on 6 expert demonstrations (cached in the tmp folder)."""
    root = tmp_path_factory.mktemp("rollout")
    mp = pytest.MonkeyPatch()
    mp.setenv("MODALFORGE_CACHE", str(root / "cache"))
    set_host(None)
    assert main(["train", RECIPE, *TINY, "--out", str(root / "run")]) == 0
    yield root
    mp.undo()
    set_host(None)


def _rollout(capsys, *argv: str) -> dict:  # noqa: ANN001
    assert main(["rollout", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_trained_policy_rollout_writes_results_gif_and_report(run, capsys):
    out = run / "rollout"
    summary = _rollout(
        capsys,
        RECIPE,
        *TINY,
        "--checkpoint",
        str(run / "run"),
        "--env",
        "tabletop_reach",
        "--episodes",
        "5",
        "--num-envs",
        "2",
        "--record",
        "3",
        "--out",
        str(out),
    )
    results = json.loads((out / "results.json").read_text())
    episodes = results["per_episode"]
    assert [e["seed"] for e in episodes] == [1000 + i for i in range(5)]
    assert results["success_rate"] == sum(e["success"] for e in episodes) / 5
    assert summary["success_rate"] == results["success_rate"]
    low, high = results["success_ci"]
    assert 0 <= low <= results["success_rate"] <= high <= 1
    assert results["mean_length"] == sum(e["length"] for e in episodes) / 5
    assert results["env_params"] == {"image_size": 64, "combinations": "train"}  # from the data
    assert all(e["instruction"].startswith(("reach", "move", "touch", "go")) for e in episodes)
    gif = Image.open(out / "episodes.gif")
    assert gif.n_frames == max(e["length"] for e in episodes[:3]) + 1  # reset frame + steps
    html = (out / "report.html").read_text()
    assert "data:image/gif;base64," in html and "success rate" in html
    assert results["policy_ms_per_call"] > 0 and 1 <= results["policy_mean_batch"] <= 2


def test_baselines_and_shuffled_instructions(run, capsys):
    expert = _rollout(
        capsys,
        "--policy",
        "expert",
        "--env",
        "tabletop_reach",
        "--episodes",
        "6",
        "--out",
        str(run / "expert"),
    )
    assert expert["success_rate"] == 1.0  # the scripted expert always reaches
    random = _rollout(
        capsys,
        "--policy",
        "random",
        "--env",
        "tabletop_push",
        "--episodes",
        "4",
        "--max-steps",
        "30",
        "--out",
        str(run / "random"),
    )
    assert random["success_rate"] == 0.0 and random["mean_length"] == 30
    shuffled = _rollout(
        capsys,
        "--policy",
        "expert",
        "--env",
        "tabletop_reach",
        "--episodes",
        "6",
        "--shuffle-instructions",
        "--out",
        str(run / "shuffled"),
    )
    true = json.loads((run / "expert" / "results.json").read_text())["per_episode"]
    shown = json.loads((run / "shuffled" / "results.json").read_text())["per_episode"]
    assert all(a["instruction"] != b["instruction"] for a, b in zip(true, shown, strict=True))
    # the expert reads the env's state, not the words: shuffling cannot hurt it
    assert shuffled["success_rate"] == 1.0


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--env", "gym_aloha/AlohaInsertion-v0"], "pip install gym-aloha"),
        (["--env", "NoSuchEnv-v9"], "no environment 'NoSuchEnv-v9' is installed"),
        (["--env", "reacher"], "gives state of shape (6,), but the policy was trained on (4,)"),
        (["--env", "tabletop_reach", "--env-param", "oops"], "'oops' is not key=value"),
    ],
)
def test_bad_rollout_input_exits_2(run, capsys, extra, match):
    argv = ["rollout", RECIPE, *TINY, "--checkpoint", str(run / "run"), "--episodes", "1"]
    argv += ["--out", str(run / "bad")]
    code = main([*argv, *extra])
    err = capsys.readouterr().err
    assert code == 2 and match in err and "Traceback" not in err


def test_baseline_without_out_or_trained_without_checkpoint_exit_2(capsys):
    assert main(["rollout", "--policy", "random", "--env", "tabletop_reach"]) == 2
    assert "--out is needed" in capsys.readouterr().err
    assert main(["rollout", RECIPE, "--env", "tabletop_reach", "--out", "/tmp/x"]) == 2
    assert "needs its SPEC and --checkpoint" in capsys.readouterr().err


def test_embed_feeds_a_film_trunk_its_instruction(run, capsys):
    """``modalforge embed`` of a conditioned encoder: the camera's features given the sample's
    own instruction, as the model computes them."""
    import torch
    from safetensors.torch import load_file

    from modalforge.pipeline import load_trained

    out = run / "embeddings"
    assert main(["embed", RECIPE, *TINY, "--checkpoint", str(run / "run"), "--out", str(out)]) == 0
    got = load_file(out / "image_front.safetensors")
    loaded = load_trained(RECIPE, run / "run", TINY)
    model = loaded.model
    sample = torch.utils.data.default_collate([loaded.pipeline.load("test")[0]])
    with torch.no_grad():
        instruction = model.encoders["instruction"](sample["instruction"])
        expected = model.encoders["image_front"](sample["image_front"], instruction)
    key = next(iter(got))
    torch.testing.assert_close(got[key][:1], expected, rtol=1e-4, atol=1e-5)
    assert got[key].shape[1] == expected.shape[1]


def test_random_baseline_in_lerobots_pusht_reports_coverage(tmp_path, capsys):
    pytest.importorskip("gym_pusht", reason="gym-pusht (the robotics extra) provides PushT")
    summary = _rollout(
        capsys,
        "--policy",
        "random",
        "--env",
        "gym_pusht/PushT-v0",
        "--episodes",
        "2",
        "--max-steps",
        "10",
        "--out",
        str(tmp_path / "pusht"),
    )
    assert summary["success_rate"] == 0.0 and summary["success_ci"][0] == 0.0
    assert 0.0 <= summary["mean_max_coverage"] <= 1.0
    assert summary["mean_max_reward"] >= 0.0 and summary["mean_length"] == 10
