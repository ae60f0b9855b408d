"""``modalforge zeroshot`` in prompt-pair mode on a tiny CLIP trained on ``synthetic_studies``.

The reference numbers come from the checkpoint's own embeddings, scored here with
``prompt_pair_scores`` and scikit-learn (ROC-AUC, AP, the ROC curve for sensitivity at 90%
specificity) and numpy (sensitivity and specificity at the threshold).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torch.utils.data import DataLoader

from modalforge.engine.data import collate_samples
from modalforge.evaluation import (
    build_prompt_pair_classifier,
    prompt_pair_probs,
    prompt_pair_scores,
    text_encoder,
)
from modalforge.pipeline import load_trained
from modalforge_apps.cli import main
from modalforge_medical.synthetic import FINDING_PROMPTS, FINDINGS


def _spec(cache: str) -> dict:
    return {
        "name": "zs-pairs",
        "seed": 0,
        "data": {
            "dataset": {
                "name": "synthetic_studies",
                "params": {
                    "dims": 2,
                    "size": 32,
                    "parts": ["image", "report"],
                    "num_train": 32,
                    "num_val": 1,  # one study: every finding has one class there
                    "num_test": 48,
                    "cache_dir": cache,
                },
            },
            "transforms": {"eval": {"xray": ["to_tensor"]}},
            "batch_size": 16,
            "eval_split": "test",
        },
        "model": {
            "type": "contrastive",
            "embed_dim": 16,
            "encoders": {
                "xray": {"name": "cnn", "params": {"widths": [4, 8]}},
                "report": {
                    "name": "clip_text",
                    "params": {
                        "context_length": 160,
                        "vocab_size": 260,
                        "width": 16,
                        "heads": 2,
                        "layers": 1,
                        "embed_dim": 16,
                    },
                },
            },
        },
        "loss": {"name": "clip", "params": {"pair": ["xray", "report"]}},
        "metrics": [],
        "train": {"epochs": 2, "progress": False, "device": "cpu"},
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(spec path, run folder) of a CLIP trained for 4 steps."""
    root = tmp_path_factory.mktemp("zs_pairs")
    spec = root / "spec.yaml"
    spec.write_text(yaml.safe_dump(_spec(str(root / "cache")), sort_keys=False))
    assert main(["train", str(spec), "--out", str(root / "run")]) == 0
    return str(spec), str(root / "run")


def _reference(trained, split="test", scale=1.0, overrides=()):  # noqa: ANN001, ANN202
    """(probabilities (N, C), 0/1 labels (N, C), metadata) from the checkpoint's embeddings."""
    spec, run = trained
    loaded = load_trained(spec, run, list(overrides))
    pipeline, model = loaded.pipeline, loaded.model.eval()
    loader = DataLoader(
        pipeline.load(split),
        batch_size=1000,
        collate_fn=lambda s: collate_samples(s, pipeline.collates),
    )
    batch = next(iter(loader))
    with torch.no_grad():
        z = model.encode("xray", batch["xray"])
        classifier = build_prompt_pair_classifier(
            text_encoder(model, "report"), FINDING_PROMPTS, FINDINGS
        )
    # the CLI's sigmoid runs in float64, so near-certain cases do not round to tied 1.0s
    probs = torch.sigmoid(prompt_pair_scores(z, classifier, scale).double()).numpy()
    return probs, batch["target"].numpy().astype(int), pipeline.dataset.metadata(split)


def _run(capsys, argv: list[str]) -> dict:  # noqa: ANN001
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _error(capsys, argv: list[str]) -> str:  # noqa: ANN001
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def _sens_at_spec(y: np.ndarray, p: np.ndarray, specificity: float) -> float:
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    return float(tpr[fpr <= 1 - specificity + 1e-12].max())


def _check_table(report: dict, probs: np.ndarray, y: np.ndarray, threshold: float) -> None:
    assert [r["finding"] for r in report["findings"]] == list(FINDINGS)
    aucs = []
    for c, row in enumerate(report["findings"]):
        yc, pc = y[:, c], probs[:, c]
        assert (row["positives"], row["negatives"]) == (int(yc.sum()), int((1 - yc).sum()))
        auc = roc_auc_score(yc, pc)
        aucs.append(auc)
        called = pc >= threshold
        expected = {
            "auc": auc,
            "ap": average_precision_score(yc, pc),
            "sensitivity": called[yc == 1].mean(),
            "specificity": (~called)[yc == 0].mean(),
            "sens_at_spec90": _sens_at_spec(yc, pc, 0.9),
        }
        for stat, value in expected.items():
            assert row[stat]["value"] == pytest.approx(value, abs=1e-6), (row["finding"], stat)
    assert report["zeroshot_auc_macro"] == pytest.approx(np.mean(aucs), abs=1e-6)
    assert report["macro"]["auc"]["value"] == report["zeroshot_auc_macro"]


def test_findings_table_equals_sklearn_on_the_embeddings(trained, capsys):
    spec, run = trained
    report = _run(capsys, ["zeroshot", spec, "--checkpoint", run, "--json", "--bootstrap", "200"])
    probs, y, _ = _reference(trained)
    assert report["mode"] == "prompt_pairs" and report["split"] == "test"
    assert report["num_samples"] == 48 and report["prompts_source"] == "data set"
    assert report["prompts"] == FINDING_PROMPTS
    assert report["bootstrap"] == {"resamples": 200, "used": 200, "ci": 0.95, "seed": 0}
    _check_table(report, probs, y, 0.5)
    assert len({r["auc"]["value"] for r in report["findings"]}) == len(FINDINGS)  # not constant
    for row in [*report["findings"], report["macro"]]:
        for stat in ("auc", "ap", "sensitivity", "specificity", "sens_at_spec90"):
            cell = row[stat]
            assert cell["ci_low"] <= cell["value"] <= cell["ci_high"], (row.get("finding"), stat)
    low, high = report["zeroshot_auc_macro_ci_low"], report["zeroshot_auc_macro_ci_high"]
    assert low < report["zeroshot_auc_macro"] < high  # 48 cases: a real interval, not a point


def test_threshold_and_scale_reach_the_table(trained, capsys):
    probs, y, _ = _reference(trained, scale=3.0)
    threshold = float(np.median(probs[:, 0]))  # about half the cases called positive
    spec, run = trained
    argv = ["zeroshot", spec, "--checkpoint", run, "--json", "--bootstrap", "0"]
    report = _run(capsys, [*argv, "--scale", "3", "--threshold", str(threshold)])
    _check_table(report, probs, y, threshold)
    sens = report["findings"][0]["sensitivity"]
    assert 0 < sens["value"] < 1 and sens["ci_low"] is None  # no bootstrap, no interval
    assert report["bootstrap"]["used"] == 0


def test_human_table_output_file_and_bootstrap_seed(trained, tmp_path, capsys):
    spec, run = trained
    out = tmp_path / "zs" / "findings.json"
    argv = ["zeroshot", spec, "--checkpoint", run, "--bootstrap", "100", "--seed", "3"]
    assert main([*argv, "--output", str(out)]) == 0
    text = capsys.readouterr().out
    written = json.loads(out.read_text())
    assert text.startswith("zero-shot findings on split 'test': 48 images, 5 findings")
    assert "95% CI from 100 bootstrap resamples" in text and f"wrote {out}" in text
    row = written["findings"][0]
    auc = row["auc"]
    cell = f"{auc['value']:.3f} ({auc['ci_low']:.2f}-{auc['ci_high']:.2f})"
    line = next(s for s in text.splitlines() if s.strip().startswith(row["finding"]))
    assert line.split()[1:4] == [str(row["positives"]), str(row["negatives"]), cell.split()[0]]
    assert cell in line
    assert written["bootstrap"]["seed"] == 3
    again = _run(capsys, [*argv, "--json"])
    assert again == written  # same seed, same intervals
    other = _run(capsys, [*argv[:-1], "4", "--json"])
    assert other["findings"][0]["auc"]["value"] == auc["value"]
    assert other["macro"]["auc"] != written["macro"]["auc"]  # another seed, other resamples


def test_prompts_file_yaml_and_json(trained, tmp_path, capsys):
    spec, run = trained
    swapped = {k: {"positive": v["negative"], "negative": v["positive"]} for k, v in
               reversed(list(FINDING_PROMPTS.items()))}  # fmt: skip
    path = tmp_path / "prompts.yaml"
    path.write_text(yaml.safe_dump(swapped))
    argv = ["zeroshot", spec, "--checkpoint", run, "--json", "--bootstrap", "0"]
    report = _run(capsys, [*argv, "--prompts", str(path)])
    default = _run(capsys, argv)
    assert report["prompts_source"] == str(path)
    assert [r["finding"] for r in report["findings"]] == list(FINDINGS)  # the target's order
    for swapped_row, row in zip(report["findings"], default["findings"], strict=True):
        # positive and negative exchanged: p becomes 1 - p, so the ROC-AUC becomes 1 - AUC
        assert swapped_row["auc"]["value"] == pytest.approx(1 - row["auc"]["value"], abs=1e-9)
    as_json = tmp_path / "prompts.json"
    as_json.write_text(json.dumps(FINDING_PROMPTS, indent="\t"))  # tabs: JSON, not YAML
    assert _run(capsys, [*argv, "--prompts", str(as_json)])["findings"] == default["findings"]


def test_subset_tables_per_column_value(trained, capsys):
    spec, run = trained
    argv = ["zeroshot", spec, "--checkpoint", run, "--json", "--bootstrap", "0"]
    report = _run(capsys, [*argv, "--subset", "sex"])
    probs, y, meta = _reference(trained)
    sex = np.asarray(meta["sex"])
    assert report["subsets"]["column"] == "sex"
    groups = report["subsets"]["groups"]
    assert [g["value"] for g in groups] == sorted(set(sex))
    for group in groups:
        keep = sex == group["value"]
        assert group["num_samples"] == int(keep.sum())
        _check_table(group, probs[keep], y[keep], 0.5)


def test_subset_leaves_out_one_class_findings(trained, capsys):
    spec, run = trained
    argv = ["zeroshot", spec, "--checkpoint", run, "--json", "--bootstrap", "0"]
    groups = _run(capsys, [*argv, "--subset", "lesion_count"])["subsets"]["groups"]
    probs, y, meta = _reference(trained)
    count = np.asarray([str(v) for v in meta["lesion_count"]])
    assert "error" in groups[0] and groups[0]["value"] == "0"  # no lesions: nothing to score
    assert "one class present" in groups[0]["error"]
    scored = 0
    for group in groups[1:]:
        keep = count == group["value"]
        yk, pk = y[keep], probs[keep]
        if "error" in group:
            assert all(p in (0, len(yk)) for p in yk.sum(axis=0))
            continue
        aucs = []
        for c, row in enumerate(group["findings"]):
            if yk[:, c].min() == yk[:, c].max():
                assert row["auc"] is None and row["positives"] == int(yk[:, c].sum())
            else:
                aucs.append(roc_auc_score(yk[:, c], pk[:, c]))
                assert row["auc"]["value"] == pytest.approx(aucs[-1], abs=1e-6)
        scored += len(aucs) < len(FINDINGS)
        assert group["zeroshot_auc_macro"] == pytest.approx(np.mean(aucs), abs=1e-6)
    assert scored  # some group had a finding left out


@pytest.mark.parametrize(
    ("content", "match", "fix"),
    [
        ("left_lesion: {positive: [a]}\n", "finding 'left_lesion': needs exactly", "one entry per"),
        ("left_lesion: [oops\n", "invalid YAML at line 2", "fix the YAML syntax"),
        ("- a\n- b\n", "prompts must map each finding", "one entry per finding"),
        ("x: {positive: [a], negative: [a]}\n", "'a'] is both positive and negative", "entry"),
    ],
)
def test_bad_prompts_file(trained, tmp_path, capsys, content, match, fix):
    spec, run = trained
    path = tmp_path / "prompts.yaml"
    path.write_text(content)
    err = _error(capsys, ["zeroshot", spec, "--checkpoint", run, "--prompts", str(path)])
    assert f"--prompts {path}" in err and match in err
    assert "fix: " in err and fix in err.split("fix: ")[1]


def test_prompts_must_name_the_targets_findings(trained, tmp_path, capsys):
    spec, run = trained
    renamed = dict(FINDING_PROMPTS)
    renamed["left"] = renamed.pop("left_lesion")
    path = tmp_path / "prompts.yaml"
    path.write_text(yaml.safe_dump(renamed))
    err = _error(capsys, ["zeroshot", spec, "--checkpoint", run, "--prompts", str(path)])
    assert f"--prompts {path}: the prompts must name each class of the target" in err
    assert "missing ['left_lesion'], unknown ['left']" in err


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--classes", "a,b,c,d,e"], "--classes name classes for single-label zero-shot"),
        (["--templates", "t.txt"], "but the data set's target is multi-label"),
        (["--prompts", "p.yaml", "--classes", "a"], "but --prompts is given"),
        (["--prompts", "missing.yaml"], "cannot read --prompts missing.yaml"),
        (["--prompts", "p.json"], "--prompts p.json: invalid JSON at line 1, column 2"),
        (
            ["--split", "val"],
            "split 'val' (1 image) has one class only for finding(s) 'left_lesion'",
        ),
        (["--subset", "ward"], "--subset 'ward': the data set has no such per-sample column"),
        (["--subset", "age"], "distinct values, more than 20"),
        (["--bootstrap", "-1"], "--bootstrap must be 0 or more"),
        (["--threshold", "1.5"], "--threshold must be between 0 and 1"),
        (["--scale", "0"], "--scale must be > 0"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_user_errors(trained, tmp_path, capsys, monkeypatch, extra, match):
    spec, run = trained
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(FINDING_PROMPTS))
    (tmp_path / "p.json").write_text("{left_lesion: 1}")
    err = _error(capsys, ["zeroshot", spec, "--checkpoint", run, *extra])
    assert match in err
    if "--classes" in extra or "--templates" in extra:
        assert "--prompts FILE" in err


def test_multiclass_target_with_prompts_is_one_vs_rest(trained, tmp_path, capsys):
    spec, run = trained
    prompts = {
        "benign": {"positive": ["a single lesion."], "negative": ["multiple lesions."]},
        "malignant": {"positive": ["a large bright lesion."], "negative": ["no lesions."]},
    }
    path = tmp_path / "diagnosis.yaml"
    path.write_text(yaml.safe_dump(prompts))
    override = "data.dataset.params.target=diagnosis"
    argv = ["zeroshot", spec, override, "--checkpoint", run, "--json", "--bootstrap", "0"]
    report = _run(capsys, [*argv, "--prompts", str(path)])
    loaded = load_trained(spec, run, [override])
    batch = next(
        iter(
            DataLoader(
                loaded.pipeline.load("test"),
                batch_size=1000,
                collate_fn=lambda s: collate_samples(s, loaded.pipeline.collates),
            )
        )
    )
    with torch.no_grad():
        z = loaded.model.encode("xray", batch["xray"])
        classifier = build_prompt_pair_classifier(
            text_encoder(loaded.model, "report"), prompts, ["benign", "malignant"]
        )
    probs = prompt_pair_probs(z, classifier).numpy()
    label = batch["target"].reshape(-1).numpy()
    for c, row in enumerate(report["findings"]):
        assert row["positives"] == int((label == c).sum())
        expected = roc_auc_score(label == c, probs[:, c])
        assert row["auc"]["value"] == pytest.approx(expected, abs=1e-6)
    # without --prompts a multi-class target keeps the class-name mode
    plain = _run(capsys, ["zeroshot", spec, override, "--checkpoint", run, "--json"])
    assert "zeroshot_top1" in plain and "mode" not in plain
