"""`maturity evaluate`: metric definitions on known answers, and a small held-out run through the CLI.

The issue's targets are stated for the default 400 organisations per set (docs in the README); this
suite runs 60 per set to stay fast, so it guards the JSON shape and a looser floor, not the targets.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from models.evaluate import _within_one, expected_calibration_error, meets_targets, metrics
from models.spec import MODEL_IDS, load_models
from pipeline.cli import app


def test_expected_calibration_error_on_known_answers():
    # perfectly calibrated: confidence 0.75 and three of four right
    assert expected_calibration_error(np.full(4, 0.75), np.array([1, 1, 1, 0])) == pytest.approx(0.0)
    # always 0.95 confident, right half the time: off by 0.45
    assert expected_calibration_error(np.full(10, 0.95), np.arange(10) % 2 == 0) == pytest.approx(0.45)
    # two bins, weighted by size: 0.25 * |1 - 0.15| + 0.75 * |1/3 - 0.85|
    conf = np.array([0.15, 0.85, 0.85, 0.85])
    right = np.array([1, 1, 0, 0])
    assert expected_calibration_error(conf, right) == pytest.approx(0.25 * 0.85 + 0.75 * (0.85 - 1 / 3))
    assert np.isnan(expected_calibration_error(np.array([]), np.array([])))


def test_within_one_is_one_stage_for_ordered_models_and_one_axis_for_smi():
    assert list(_within_one("forrester", np.array([0, 2, 4]), np.array([1, 0, 4]))) == [True, False, True]
    smi = load_models()["smi"]
    names = smi.stage_names
    observers, social_first = names.index("Observers"), names.index("#SocialFirst")
    one_axis = [i for i in range(len(names)) if i not in (observers, social_first)]
    assert _within_one("smi", np.array([observers]), np.array([one_axis[0]]))[0]
    assert not _within_one("smi", np.array([observers]), np.array([social_first]))[0]   # both axes wrong


def test_metrics_and_missed_targets_on_a_hand_made_result():
    import pandas as pd

    test = pd.DataFrame({"org": ["a", "b", "c", "d"], **{f"truth_{m}": [0, 1, 1, 0] for m in MODEL_IDS}})
    specs = load_models()
    rows = []
    for model_id in MODEL_IDS:
        stages = specs[model_id].stage_names
        for org, pred, status in (("a", 0, "ok"), ("b", 1, "ok"), ("c", 0, "ok"), ("d", 3, "insufficient_evidence")):
            rows.append({"org": org, "model": model_id, "stage_index": pred, "status": status,
                         "confidence": 0.9, "rule_stage": stages[1]})
    result = metrics(rows, test)
    forrester = result["forrester"]
    assert forrester["n"] == 3 and forrester["insufficient"] == 1          # thin data is not scored
    assert forrester["exact_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert forrester["rules_only_exact_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert forrester["confusion"][1][0] == 1 and np.trace(forrester["confusion"]) == 2
    missed = meets_targets(result)["forrester"]
    assert any(m.startswith("exact_accuracy 0.6667") for m in missed)
    assert any(m.startswith("ece") for m in missed)


def test_evaluate_cli_reports_every_model_on_held_out_organisations():
    result = CliRunner().invoke(app, ["evaluate", "--orgs", "60", "--train-seed", "3", "--test-seed", "4",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    specs = load_models()
    for model_id in MODEL_IDS:
        m = report[model_id]
        stages = len(specs[model_id].stages)
        assert {"exact_accuracy", "within_one_accuracy", "macro_f1", "ece", "rules_only_exact_accuracy",
                "confusion"} <= set(m)
        assert np.array(m["confusion"]).shape == (stages, stages)
        # the metrics score points (status ok); intervals (a stage public data cannot show above the
        # point, e.g. S3M Transformation) count with "insufficient" until the evaluation scores them
        assert np.array(m["confusion"]).sum() == m["n"] and m["n"] + m["insufficient"] == 60 and m["n"] >= 15
        # a loose floor for 60 organisations (targets are for 400; see the README). Confidence is the
        # classifier's own probability of the point, read without the rules' inputs, so it runs below
        # the points' accuracy (smmm: 0.97 exact, ECE 0.22) until the bootstrap confidence replaces it
        assert m["exact_accuracy"] >= 0.7 and m["within_one_accuracy"] >= 0.95 and m["ece"] <= 0.25
