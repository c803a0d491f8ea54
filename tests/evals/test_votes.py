import csv

import numpy as np
import pytest

from evals.votes import (
    Vote,
    create_comparison,
    export_votes_csv,
    get_comparison,
    leaderboard,
    load_votes,
    pending_comparisons,
    record_vote,
)

TRUE_STRENGTH = {"ft+rag": 300.0, "ft": 150.0, "rag": 0.0, "base": -200.0}  # Elo points


def synthetic_votes(n: int, seed: int) -> list[Vote]:
    """Votes drawn from a known ordering: P(A wins) follows the Elo curve; near-coin-flips become ties."""
    rng = np.random.default_rng(seed)
    arms = list(TRUE_STRENGTH)
    votes = []
    for i in range(n):
        a, b = rng.choice(len(arms), 2, replace=False)
        p = 1 / (1 + 10 ** ((TRUE_STRENGTH[arms[b]] - TRUE_STRENGTH[arms[a]]) / 400))
        u = rng.random()
        winner = "tie" if abs(u - p) < 0.04 else "both_bad" if abs(u - p) < 0.06 else "a" if u < p else "b"
        votes.append(Vote(f"c{i}", arms[a], arms[b], winner, float(i)))
    return votes


@pytest.fixture
def ws(tmp_path):
    from common.workspace import Workspace

    return Workspace(tmp_path / "ws")


def test_comparison_hides_arms_until_the_vote(ws):
    cid = create_comparison(ws, "Capital of France?", "base", "Lyon", "ft", "Paris", shuffle=False)
    shown = get_comparison(ws, cid)
    assert (shown.prompt, shown.answer_a, shown.answer_b) == ("Capital of France?", "Lyon", "Paris")
    assert not hasattr(shown, "arm_a")
    vote = record_vote(ws, cid, "b", voter="ann")
    assert (vote.arm_a, vote.arm_b, vote.winner_arm, vote.voter) == ("base", "ft", "ft", "ann")
    assert load_votes(ws) == [vote]


def test_shuffle_swaps_sides_together_with_answers(ws):
    for _ in range(40):
        create_comparison(ws, "p", "base", "answer of base", "ft", "answer of ft")
    with ws.db() as con:
        rows = [dict(r) for r in con.execute("SELECT arm_a, answer_a, arm_b, answer_b FROM comparisons")]
    assert all(
        r["answer_a"] == f"answer of {r['arm_a']}" and r["answer_b"] == f"answer of {r['arm_b']}"
        for r in rows
    )
    assert 0 < sum(r["arm_a"] == "base" for r in rows) < 40  # chance of failing: 2 * 0.5**40


def test_votes_on_unknown_or_already_voted_comparisons_are_refused(ws):
    cid = create_comparison(ws, "p", "a1", "x", "a2", "y")
    with pytest.raises(ValueError, match="no comparison with id 'nope'"):
        record_vote(ws, "nope", "a")
    record_vote(ws, cid, "tie")
    with pytest.raises(ValueError, match="already has a vote"):
        record_vote(ws, cid, "a")
    with pytest.raises(ValueError, match="winner must be one of a, b, tie, both_bad"):
        record_vote(ws, cid, "A")
    with pytest.raises(ValueError, match="no comparison"):
        get_comparison(ws, "nope")
    assert len(load_votes(ws)) == 1


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "a", "x", "b", "y"), "prompt must be a non-empty string"),
        (("p", "same", "x", "same", "y"), "arm_a and arm_b must differ"),
        (("p", "a", None, "b", "y"), "answer_a and answer_b must be strings"),
    ],
)
def test_bad_comparisons_are_refused(ws, args, match):
    with pytest.raises(ValueError, match=match):
        create_comparison(ws, *args)


def test_pending_lists_only_unvoted(ws):
    first = create_comparison(ws, "p1", "a1", "x", "a2", "y")
    second = create_comparison(ws, "p2", "a1", "x", "a2", "y")
    record_vote(ws, first, "a")
    assert [c.id for c in pending_comparisons(ws)] == [second]


def test_leaderboard_recovers_the_known_ordering():
    rows = leaderboard(synthetic_votes(600, seed=1), rounds=200)
    order = sorted(TRUE_STRENGTH, key=TRUE_STRENGTH.get, reverse=True)
    assert [r.arm for r in rows] == order
    assert [r.arm for r in sorted(rows, key=lambda r: -r.elo)] == order
    for r in rows:
        assert r.bt_low <= r.bt <= r.bt_high and r.elo_low <= r.elo <= r.elo_high
    # the BT gaps match the generating gaps within a generous margin
    bt = {r.arm: r.bt for r in rows}
    assert bt["ft+rag"] - bt["base"] == pytest.approx(500, abs=150)


def test_bradley_terry_intervals_shrink_with_more_votes():
    # Online Elo's interval does not: with a fixed K its noise floor is set by K, not by the vote count
    # (the reason Chatbot Arena moved to Bradley-Terry); the leaderboard docstring says so.
    widths = []
    for n in (60, 500, 2000):
        rows = leaderboard(synthetic_votes(n, seed=2), rounds=200)
        widths.append({r.arm: r.bt_high - r.bt_low for r in rows})
    for arm in TRUE_STRENGTH:
        assert widths[0][arm] > widths[1][arm] > widths[2][arm]
        assert widths[2][arm] < 0.5 * widths[0][arm]


def test_ties_and_both_bad_count_half_and_records_add_up():
    votes = [Vote("1", "x", "y", "tie", 1.0), Vote("2", "x", "y", "both_bad", 2.0)]
    rows = {r.arm: r for r in leaderboard(votes, rounds=50)}
    assert rows["x"].bt == pytest.approx(rows["y"].bt) == pytest.approx(1000)
    assert (rows["x"].votes, rows["x"].wins, rows["x"].losses, rows["x"].ties, rows["x"].both_bad) == (
        2,
        0,
        0,
        1,
        1,
    )


def test_undefeated_arm_stays_finite():
    rows = leaderboard([Vote(str(i), "strong", "weak", "a", float(i)) for i in range(5)], rounds=50)
    assert rows[0].arm == "strong" and np.isfinite(rows[0].bt) and rows[0].bt > 1100


def test_leaderboard_reads_the_workspace_and_is_reproducible(ws):
    for winner in ["a", "a", "b", "a", "tie"]:
        record_vote(ws, create_comparison(ws, "p", "ft", "x", "base", "y", shuffle=False), winner)
    rows = leaderboard(ws, rounds=100, seed=3)
    assert rows == leaderboard(ws, rounds=100, seed=3)
    assert rows[0].arm == "ft" and rows[0].wins == 3 and rows[1].wins == 1
    assert leaderboard([]) == []
    with pytest.raises(ValueError, match="rounds must be a positive integer"):
        leaderboard(ws, rounds=0)


def test_csv_export_holds_every_vote_with_arms(ws, tmp_path):
    cid = create_comparison(ws, 'Grüße, "quoted"\nprompt', "ft", "ä, b", "base", "y", shuffle=False)
    record_vote(ws, cid, "a", voter="bo")
    create_comparison(ws, "unvoted", "ft", "x", "base", "y")
    path = export_votes_csv(ws, tmp_path / "votes.csv")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    assert rows[0]["prompt"] == 'Grüße, "quoted"\nprompt' and rows[0]["answer_a"] == "ä, b"
    assert (rows[0]["winner"], rows[0]["winner_arm"], rows[0]["voter"]) == ("a", "ft", "bo")
    assert not list(tmp_path.glob(".votes.csv.*"))  # no temp file left behind


def test_csv_export_of_no_votes_writes_a_header(ws, tmp_path):
    path = export_votes_csv(ws, tmp_path / "empty.csv")
    assert path.read_text().startswith("comparison_id,created,voter,prompt")
