"""Stability on real data: thread splits keep conversations whole, halves are compared per
(org, model), and one random split of the twcs prefix is imported and estimated half by half."""
from __future__ import annotations

import pandas as pd

from pipeline.training import stability as S


def _tweets():
    # threads: 1 <- 2 <- 3, 4 <- 5, 6 (alone), 7 <- 8 (8's parent 9 is outside the file: 8 is a root)
    return pd.DataFrame({
        "tweet_id": [1, 2, 3, 4, 5, 6, 8],
        "in_response_to_tweet_id": [None, 1, 2, None, 4, None, 9],
        "created_at": ["Tue Oct 31 22:10:47 +0000 2017", "Tue Oct 31 22:11:47 +0000 2017",
                       "Tue Oct 31 22:12:47 +0000 2017", "Wed Nov 01 10:00:00 +0000 2017",
                       "Wed Nov 01 10:05:00 +0000 2017", "Thu Nov 02 10:00:00 +0000 2017",
                       "Fri Nov 03 10:00:00 +0000 2017"]})


def test_threads_follow_reply_chains_inside_the_file():
    assert S.thread_roots(_tweets()).tolist() == [1, 1, 1, 4, 4, 6, 8]


def test_splits_partition_the_file_into_whole_threads():
    tweets = _tweets()
    roots = S.thread_roots(tweets)
    for kind, seed in (("random", 0), ("random", 1), ("time", 0)):
        first, second = S.split_threads(tweets, kind, seed)
        assert sorted(first["tweet_id"].tolist() + second["tweet_id"].tolist()) == sorted(tweets["tweet_id"])
        in_first = set(roots[first["tweet_id"].to_numpy()])
        assert not in_first & set(roots[second["tweet_id"].to_numpy()])      # no thread is cut
        assert len(first) and len(second)
    first, _ = S.split_threads(tweets, "time", 0)
    assert set(first["tweet_id"]) == {1, 2, 3, 4, 5}                         # the two earliest threads


def _rec(org, model, point, conf, status="ok", mentions=30.0, low=None, high=None, rate=None):
    return {"org": org, "model": model, "stage_index": point, "confidence": conf, "status": status,
            "stage_low_index": point if low is None else low, "stage_high_index": point if high is None else high,
            "explanation": {"data_confidence": {"classifier_probability": 0.95}, "evidence": {"mentions": mentions},
                            "signals": {"response_rate": rate}}}


def test_compare_counts_same_within_one_and_confident_pairs():
    a = [_rec("x", "smmm", 1, 0.95), _rec("y", "smmm", 0, 0.5), _rec("z", "smmm", 3, 0.99),
         _rec("w", "smmm", None, None, "insufficient_evidence")]
    b = [_rec("x", "smmm", 1, 0.5), _rec("y", "smmm", 2, 0.5), _rec("z", "smmm", 2, 0.2), _rec("w", "smmm", 1, 0.9)]
    summary = S.summarise(S.compare(a, b))
    assert summary["pairs"] == 3                                  # w is insufficient in one half
    assert summary["same"] == round(1 / 3, 4) and summary["within_one"] == round(2 / 3, 4)
    assert summary["confident_pairs"] == 2 and summary["confident_keep"] == 0.5
    assert summary["classifier_confident_pairs"] == 3
    assert summary["overlap"] == round(1 / 3, 4)


def test_compare_reads_overlap_of_intervals_and_the_smaller_halfs_evidence():
    a = [_rec("x", "s3m", 1, 0.9, "interval", mentions=12.0, low=1, high=3), _rec("y", "s3m", 0, 0.9, mentions=40.0)]
    b = [_rec("x", "s3m", 2, 0.9, "interval", mentions=7.0, low=2, high=3), _rec("y", "s3m", 2, 0.9, mentions=44.0)]
    pairs = S.compare(a, b).set_index("org")
    assert pairs.loc["x", "overlap"] and not pairs.loc["x", "same"] and pairs.loc["x", "mentions"] == 7.0
    # the reported stages (each interval's lowest) differ too; an interval and a point can share it
    assert not pairs.loc["x", "same_stage"]
    widened = S.compare([_rec("v", "s3m", 1, 0.9, "interval", low=1, high=3)], [_rec("v", "s3m", 1, 0.9)])
    assert widened["same_stage"].tolist() == [True] and widened["same"].tolist() == [False]
    assert not pairs.loc["y", "overlap"] and pairs.loc["y", "mentions"] == 40.0


def test_summary_says_how_unequal_the_halves_evidence_is_and_how_their_answer_rates_differ():
    a = [_rec("x", "smmm", 1, 0.9, mentions=10.0, rate=0.9), _rec("y", "smmm", 1, 0.9, mentions=40.0, rate=0.8),
         _rec("z", "smmm", 1, 0.9, mentions=30.0, rate=0.5)]
    b = [_rec("x", "smmm", 1, 0.9, mentions=40.0, rate=0.1), _rec("y", "smmm", 1, 0.9, mentions=20.0, rate=0.6),
         _rec("z", "smmm", 1, 0.9, mentions=30.0, rate=0.7)]
    summary = S.summarise(S.compare(a, b))
    assert summary["evidence_ratio"] == 0.5                      # median of 10/40, 20/40, 30/30
    # x has fewer than 20 judged mentions in one half: only y (+0.2) and z (-0.2) compare answer rates
    assert summary["answer_rate_pairs"] == 2
    assert summary["answer_rate_shift"] == 0.0 and summary["answer_rate_spread"] == 0.2


def test_random_halves_of_the_twcs_prefix_are_imported_and_estimated_on_their_own(twcs_prefix, tmp_path):
    result = S.measure(twcs_prefix, S.ORGS, 90, random_splits=1, data_confidence=False, folder=tmp_path)
    random = result["random"]
    assert random["pairs"] >= 50          # ~15 organisations staged in both halves, x 5 models
    assert random["same"] <= random["within_one"] and random["within_one"] >= 0.9
    assert random["same"] <= random["same_stage"] <= random["within_one"]
    assert result["time"]["pairs"] >= 50
    assert set(result["targets"]) == set(S.TARGETS)
    banded = sum(v["pairs"] for k, v in result["by_evidence"].items() if k.startswith("random."))
    assert banded == random["pairs"] and random["same"] <= random["overlap"]
    # one split each: its own figures are the kind's
    assert set(result["per_split"]) == {"random.0", "time.0"}
    assert result["per_split"]["random.0"] == random and result["per_split"]["time.0"] == result["time"]
