import json
import os

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from modalforge.engine import checkpoint as ckpt_mod
from modalforge.engine.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint
from modalforge.engine.config import TrainConfig
from modalforge.engine.schedule import build_adamw, build_scheduler
from modalforge.errors import CheckpointError

CPU = torch.device("cpu")


class Net(nn.Module):
    def __init__(self, hidden: int = 5, extra: int = 0) -> None:
        super().__init__()
        self.a = nn.Linear(3, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.b = nn.Linear(hidden, 2)
        self.more = nn.ModuleList(nn.Linear(2, 2) for _ in range(extra))

    def forward(self, x):
        return self.b(self.norm(self.a(x)))


class Temp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(0.5))


def _trained(steps: int = 3, seed: int = 0, **net_kw):
    torch.manual_seed(seed)
    net, loss = Net(**net_kw), Temp()
    cfg = TrainConfig(lr=0.01, warmup_steps=2)
    named = [*net.named_parameters(), *(("loss." + n, p) for n, p in loss.named_parameters())]
    opt = build_adamw(named, cfg, CPU)
    sched = build_scheduler(opt, cfg, total_steps=10)
    for _ in range(steps):
        out = net(torch.randn(4, 3)) * loss.logit_scale
        out.pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
    return net, loss, opt, sched


def _save(run, step=3, **kw):
    net, loss, opt, sched = _trained(step)
    path = save_checkpoint(
        run,
        model=net,
        loss=loss,
        optimizers={"model": opt},
        schedulers={"model": sched},
        step=step,
        epoch=1,
        spec_name="t",
        **kw,
    )
    return path, (net, loss, opt, sched)


def test_round_trip_is_exact(tmp_path):
    path, (net, loss, opt, sched) = _save(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == [
        "model.safetensors",
        "optimizer.safetensors",
        "state.json",
    ]
    state = json.loads((path / "state.json").read_text())
    assert state["format"] == "modalforge-checkpoint" and state["step"] == 3
    assert "loss.logit_scale" in load_file(path / "model.safetensors")
    opt_keys = load_file(path / "optimizer.safetensors")
    assert "model.state.0.exp_avg" in opt_keys and "model.state.0.exp_avg_sq" in opt_keys

    net2, loss2, opt2, sched2 = _trained(steps=0, seed=1)  # different init, empty state
    loaded = load_checkpoint(
        tmp_path, model=net2, loss=loss2, optimizers={"model": opt2}, schedulers={"model": sched2}
    )
    assert loaded["step"] == 3 and loaded["path"] == str(path)
    for (k, v), (k2, v2) in zip(net.state_dict().items(), net2.state_dict().items(), strict=True):
        assert k == k2
        torch.testing.assert_close(v, v2, rtol=0, atol=0)
    torch.testing.assert_close(loss.logit_scale, loss2.logit_scale, rtol=0, atol=0)
    sd, sd2 = opt.state_dict(), opt2.state_dict()
    for idx, st in sd["state"].items():
        for key, value in st.items():
            torch.testing.assert_close(value, sd2["state"][idx][key], rtol=0, atol=0)
    assert sd["param_groups"] == sd2["param_groups"]
    assert sched2.state_dict() == sched.state_dict()
    # The next step is identical too.
    x = torch.randn(4, 3)
    for n, l_, o, s in ((net, loss, opt, sched), (net2, loss2, opt2, sched2)):
        (n(x) * l_.logit_scale).pow(2).mean().backward()
        o.step()
        s.step()
    for p, p2 in zip(net.parameters(), net2.parameters(), strict=True):
        torch.testing.assert_close(p, p2, rtol=0, atol=0)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    _save(tmp_path)

    def boom(*a, **k):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", boom)
    load_checkpoint(tmp_path, model=_trained(0)[0], loss=Temp())


def test_resolve_accepts_run_checkpoints_and_step_folders(tmp_path):
    path, _ = _save(tmp_path, step=3)
    newer, _ = _save(tmp_path, step=7)
    assert resolve_checkpoint(tmp_path) == newer  # via latest.json
    assert resolve_checkpoint(tmp_path / "checkpoints") == newer
    assert resolve_checkpoint(path) == path
    assert resolve_checkpoint(path / "state.json") == path
    (tmp_path / "checkpoints" / "latest.json").unlink()  # highest step folder without the index
    assert resolve_checkpoint(tmp_path) == newer


def test_rotation_keeps_newest_and_best(tmp_path):
    best = {"metric": "loss", "mode": "min", "value": 0.1, "step": 1, "checkpoint": "step_00000001"}
    for step in (1, 2, 3, 4):
        _save(tmp_path, step=step, keep=2, best=best)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest.json", "step_00000001", "step_00000003", "step_00000004"]
    index = json.loads((tmp_path / "checkpoints" / "latest.json").read_text())
    assert index["latest"] == "step_00000004" and index["best"] == "step_00000001"


@pytest.mark.parametrize("fail_on", ["optimizer.safetensors", "state.json"])
def test_crash_during_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch, fail_on):
    first, _ = _save(tmp_path, step=3)
    root = tmp_path / "checkpoints"
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    real_save, real_json = ckpt_mod.safetensors.torch.save_file, ckpt_mod.write_json

    def save_file(tensors, filename, **kw):
        if filename.endswith(fail_on):
            raise OSError("disk full (simulated)")
        return real_save(tensors, filename, **kw)

    def write_json(path, obj, **kw):
        if str(path).endswith(fail_on):
            raise OSError("disk full (simulated)")
        return real_json(path, obj, **kw)

    monkeypatch.setattr(ckpt_mod.safetensors.torch, "save_file", save_file)
    monkeypatch.setattr(ckpt_mod, "write_json", write_json)
    with pytest.raises(OSError, match="simulated"):
        _save(tmp_path, step=8)
    after = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # old checkpoint and latest.json byte-identical, nothing new
    assert sorted(os.listdir(root)) == ["latest.json", first.name]  # no temp folder left
    monkeypatch.undo()
    load_checkpoint(tmp_path, model=_trained(0)[0], loss=Temp())  # still loads


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist") as info:
        resolve_checkpoint(tmp_path / "nope")
    assert "fix:" in str(info.value)


def test_torch_pickle_is_refused_without_unpickling(tmp_path):
    pt = tmp_path / "model.pt"
    torch.save(Net().state_dict(), pt)
    with pytest.raises(CheckpointError, match="not a modalforge checkpoint.*torch.save") as info:
        load_checkpoint(pt, model=Net())
    assert "never unpickles" in str(info.value)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b'{"step": 3}', "JSON file without"),
        (b"\x00\x01garbage", "unknown format"),
    ],
)
def test_foreign_files_are_refused(tmp_path, content, what):
    f = tmp_path / "thing.bin"
    f.write_bytes(content)
    with pytest.raises(CheckpointError, match=what):
        resolve_checkpoint(f)


def test_folder_without_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not a modalforge checkpoint"):
        resolve_checkpoint(tmp_path)
    (tmp_path / "state.json").write_text('{"hello": 1}')
    with pytest.raises(CheckpointError, match="lacks the .*marker"):
        load_checkpoint(tmp_path, model=Net())


def test_truncated_weights_are_detected(tmp_path):
    path, _ = _save(tmp_path)
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-20])
    with pytest.raises(CheckpointError, match="model.safetensors is truncated or corrupt"):
        load_checkpoint(tmp_path, model=Net(), loss=Temp())


def test_unparseable_weights_with_matching_hash_are_detected(tmp_path):
    path, _ = _save(tmp_path)
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-20])
    state = json.loads((path / "state.json").read_text())
    state["files"]["model.safetensors"] = ckpt_mod.sha256_file(f)
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match="corrupt or truncated and cannot be read"):
        load_checkpoint(tmp_path, model=Net(), loss=Temp())


def test_corrupt_state_json(tmp_path):
    path, _ = _save(tmp_path)
    (path / "state.json").write_text('{"format": "modalforge-checkpoint", "st')
    with pytest.raises(CheckpointError, match="state.json is corrupt: not valid JSON"):
        load_checkpoint(path, model=Net())


@pytest.mark.parametrize(
    ("key", "value"), [("step", "abc"), ("epoch", -1), ("step", True), ("files", [1])]
)
def test_a_state_json_field_of_the_wrong_type_is_corrupt(tmp_path, key, value):
    path, _ = _save(tmp_path)
    state = json.loads((path / "state.json").read_text())
    state[key] = value
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=rf"state\.json is corrupt: field '{key}' is "):
        load_checkpoint(path, model=Net())


def test_architecture_mismatch_lists_keys_and_shapes(tmp_path):
    _save(tmp_path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path, model=Net(hidden=6, extra=7), loss=Temp())
    msg = str(info.value)
    assert "different model architecture" in msg
    assert "14 missing key(s)" in msg and "(4 more)" in msg  # at most 10 listed
    assert "a.weight checkpoint (5, 3) vs model (6, 3)" in msg
    assert "spec that wrote this checkpoint" in msg
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\).*loss.logit_scale"):
        load_checkpoint(tmp_path, model=Net(), loss=nn.Module())


def test_weights_only_loading_ignores_loss_params(tmp_path):
    _save(tmp_path)
    net = Net()
    load_checkpoint(tmp_path, model=net)  # no loss module: its saved params are skipped


def test_optimizer_mismatch_is_a_checkpoint_error(tmp_path):
    _save(tmp_path)
    net, loss = Net(), Temp()
    opt = torch.optim.AdamW(net.parameters())  # one group instead of decay/no_decay
    with pytest.raises(CheckpointError, match="parameter groups"):
        load_checkpoint(tmp_path, model=net, loss=loss, optimizers={"model": opt})
    with pytest.raises(CheckpointError, match="no state for optimizer 'generator'"):
        load_checkpoint(tmp_path, model=net, loss=loss, optimizers={"generator": opt})


def test_checkpoint_of_another_model_type_is_refused_by_name(tmp_path):
    class GanLike(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Linear(2, 2)

    class DalleLike(GanLike):
        pass

    save_checkpoint(tmp_path, model=GanLike(), step=1, epoch=0)
    with pytest.raises(CheckpointError, match=r"holds a GanLike .* builds a DalleLike") as info:
        load_checkpoint(tmp_path, model=DalleLike())
    assert "spec that wrote this checkpoint" in info.value.hint
    load_checkpoint(tmp_path, model=GanLike())  # the same type loads
