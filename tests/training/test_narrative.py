"""Generator B: independent of the rules, stage-conditional as the seeds' narrative says, and loaded
through the normal path so the feature library computes its signals."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.spec import MODEL_IDS, load_models
from pipeline.training import narrative as N
from pipeline.training.evaluation import narrative_frame

REPO = Path(__file__).resolve().parents[2]


def test_generator_b_reads_neither_the_rules_nor_the_model_files_nor_the_scales():
    tree = ast.parse((REPO / "pipeline" / "training" / "narrative.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m.startswith(("models", "tomllib", "pipeline.training.synthetic"))}
    docstring = ast.get_docstring(tree, clean=False)
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
               and n.value != docstring]
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not [s for s in strings if ".toml" in s] and not {"SCALES", "SCALE_BY_SIGNAL"} & names
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, pipeline.training.narrative; "
                               "print(sorted(m for m in sys.modules if m.startswith('models')))"],
        capture_output=True, text=True, check=True, cwd=REPO, env={"PYTHONPATH": str(REPO)}).stdout
    assert loaded.strip() == "[]", loaded     # not models.rules, models.dimensions nor models.spec, even indirectly


def test_stage_names_are_the_seeds_stages():
    specs = load_models()
    for model_id in MODEL_IDS:
        assert sorted(N.stage_names(model_id)) == sorted(specs[model_id].stage_names), model_id
        if model_id != "smi":
            assert N.stage_names(model_id) == specs[model_id].stage_names, model_id


def _mean_draw(model_id: str, stage: str, behaviour: str, operationalisation: str = "O1", n: int = 400) -> float:
    rng = np.random.default_rng(0)
    draw = N.stage_behaviour(model_id, stage, operationalisation, seed=1)[behaviour]
    return float(np.mean([draw.sample(rng) for _ in range(n)]))


def test_behaviour_follows_the_narrative_and_the_operationalisations_differ():
    smmm = N.stage_names("smmm")
    answer = [_mean_draw("smmm", s, "answer_rate") for s in smmm]
    assert answer == sorted(answer) and answer[0] < 0.25 < 0.7 < answer[-1]   # "doesn't consistently monitor"
    assert _mean_draw("s3m", "Ad Hoc", "account") < 0.5 < _mean_draw("s3m", "Experimental", "account")
    assert _mean_draw("s3m", "Functional", "care") > 0.6 > _mean_draw("s3m", "Experimental", "care")
    # O3 carries SMMM's "set procedure" by signatures, so the answer rate is background for every stage
    o3 = {round(_mean_draw("smmm", s, "answer_rate", "O3"), 6) for s in smmm}
    assert len(o3) == 1
    team = [_mean_draw("smmm", s, "team", "O3") for s in smmm]
    assert team == sorted(team) and team[-1] > team[0] + 5
    # O2 moves locations by x0.8 or x1.2
    o1, o2 = (N.stage_behaviour("forrester", "Early Majority", o, seed=1)["answer_rate"].a for o in ("O1", "O2"))
    assert o2 == pytest.approx(o1 * 0.8) or o2 == pytest.approx(o1 * 1.2)
    with pytest.raises(ValueError):
        N.stage_behaviour("smmm", "Integrated", "O4", seed=1)


def test_generation_is_deterministic_and_covers_every_model():
    first, second = N.generate(5, 4, "O2"), N.generate(5, 4, "O2")
    assert [o.truth for o in first.orgs] == [o.truth for o in second.orgs]
    assert len(first.posts) == len(second.posts) and first.posts[0] == second.posts[0]
    assert {o.model for o in first.orgs} == set(MODEL_IDS)
    smi = [o for o in first.orgs if o.model == "smi"]
    assert all(N.SMI_QUADRANTS[(o.axes["investment"], o.axes["innovation"])] == o.truth for o in smi)


def test_features_of_generator_b_come_from_the_feature_library_and_follow_the_latent_stage():
    frame = narrative_frame(3, 24, 90, "O1", prefix="t")
    truths = frame[[f"truth_{m}" for m in MODEL_IDS]].notna().sum(axis=1)
    assert len(frame) == 24 * len(MODEL_IDS) and (truths == 1).all()    # one population per model
    assert frame[["truth_smi_investment", "truth_smi_innovation"]].notna().sum().tolist() == [24, 24]
    smmm = frame[frame["truth_smmm"].notna()]
    low = smmm.loc[smmm["truth_smmm"] == 0, "sig_response_rate"].mean()
    high = smmm.loc[smmm["truth_smmm"] >= 2, "sig_response_rate"].mean()
    assert high > low + 0.4, (low, high)
