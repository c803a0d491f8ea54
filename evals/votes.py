"""Blind pairwise votes in the workspace database, and the Elo / Bradley-Terry leaderboard they produce.

A comparison is one prompt with two arms' answers, shown as A and B (positions shuffled by default) without
the arm names; a vote says A better, B better, tie, or both bad. The arms are revealed only by the vote
(`record_vote` returns them). Tables `comparisons` and `votes` are in `common.workspace.SCHEMA`.

    python -m evals leaderboard [--json] [--workspace DIR] [--csv votes.csv]
"""

from __future__ import annotations

import csv
import io
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_text
from common.workspace import Workspace

WINNERS = ("a", "b", "tie", "both_bad")
SCALE, BASE, INITIAL = 400.0, 10.0, 1000.0  # the Elo scale Chatbot Arena reports on


@dataclass(frozen=True)
class BlindComparison:
    """What a voter sees: the prompt and two answers, never the arms."""

    id: str
    prompt: str
    answer_a: str
    answer_b: str


@dataclass(frozen=True)
class Vote:
    """A cast vote with the arms revealed."""

    comparison_id: str
    arm_a: str
    arm_b: str
    winner: str  # a / b / tie / both_bad
    created: float
    voter: str | None = None

    @property
    def winner_arm(self) -> str | None:
        """The winning arm's name, or None for a tie or both bad."""
        return {"a": self.arm_a, "b": self.arm_b}.get(self.winner)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def create_comparison(
    ws: Workspace, prompt: str, arm_a: str, answer_a: str, arm_b: str, answer_b: str, shuffle: bool = True
) -> str:
    """Store a comparison and return its id. With `shuffle` (default) the two sides swap at random, so the
    position a voter sees says nothing about the arm. Raises ValueError for empty fields or equal arms."""
    _text(prompt, "prompt"), _text(arm_a, "arm_a"), _text(arm_b, "arm_b")
    if arm_a == arm_b:
        raise ValueError(f"arm_a and arm_b must differ, both are {arm_a!r}")
    if not isinstance(answer_a, str) or not isinstance(answer_b, str):
        raise ValueError("answer_a and answer_b must be strings")
    if shuffle and random.SystemRandom().random() < 0.5:
        arm_a, answer_a, arm_b, answer_b = arm_b, answer_b, arm_a, answer_a
    comparison_id = uuid.uuid4().hex
    with ws.db() as con:
        con.execute(
            "INSERT INTO comparisons (id, prompt, arm_a, arm_b, answer_a, answer_b, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (comparison_id, prompt, arm_a, arm_b, answer_a, answer_b, time.time()),
        )
    return comparison_id


def get_comparison(ws: Workspace, comparison_id: str) -> BlindComparison:
    """The comparison as the voter sees it. Raises ValueError for an unknown id."""
    with ws.db() as con:
        row = con.execute(
            "SELECT id, prompt, answer_a, answer_b FROM comparisons WHERE id = ?", (comparison_id,)
        ).fetchone()
    if row is None:
        raise ValueError(f"no comparison with id {comparison_id!r}")
    return BlindComparison(**dict(row))


def pending_comparisons(ws: Workspace, limit: int | None = None) -> list[BlindComparison]:
    """Comparisons nobody has voted on yet, oldest first."""
    with ws.db() as con:
        rows = con.execute(
            "SELECT c.id, c.prompt, c.answer_a, c.answer_b FROM comparisons c "
            "LEFT JOIN votes v ON v.comparison_id = c.id WHERE v.comparison_id IS NULL "
            "ORDER BY c.created, c.rowid LIMIT ?",
            (-1 if limit is None else limit,),
        ).fetchall()
    return [BlindComparison(**dict(r)) for r in rows]


def record_vote(ws: Workspace, comparison_id: str, winner: str, voter: str | None = None) -> Vote:
    """Record the vote on a comparison and return it with the arms revealed.

    Raises ValueError for an unknown winner, an unknown comparison, or a comparison already voted on.
    """
    if winner not in WINNERS:
        raise ValueError(f"winner must be one of {', '.join(WINNERS)}, got {winner!r}")
    now = time.time()
    with ws.db() as con:
        row = con.execute("SELECT arm_a, arm_b FROM comparisons WHERE id = ?", (comparison_id,)).fetchone()
        if row is None:
            raise ValueError(f"no comparison with id {comparison_id!r}; votes need a stored comparison")
        # INSERT OR IGNORE + rowcount makes "already voted" race-free between concurrent voters.
        cur = con.execute(
            "INSERT OR IGNORE INTO votes (comparison_id, winner, voter, created) VALUES (?, ?, ?, ?)",
            (comparison_id, winner, voter, now),
        )
        if cur.rowcount == 0:
            raise ValueError(f"comparison {comparison_id!r} already has a vote; each pair is voted on once")
    return Vote(comparison_id, row["arm_a"], row["arm_b"], winner, now, voter)


def load_votes(ws: Workspace) -> list[Vote]:
    """Every vote with its arms, in the order cast."""
    with ws.db() as con:
        rows = con.execute(
            "SELECT v.comparison_id, c.arm_a, c.arm_b, v.winner, v.created, v.voter "
            "FROM votes v JOIN comparisons c ON c.id = v.comparison_id ORDER BY v.created, v.rowid"
        ).fetchall()
    return [Vote(**dict(r)) for r in rows]


def export_votes_csv(ws: Workspace, path: str | Path) -> Path:
    """Write every vote (prompt, both answers, arms, winner) to a CSV file atomically; returns the path."""
    with ws.db() as con:
        rows = con.execute(
            "SELECT v.comparison_id, v.created, v.voter, c.prompt, c.arm_a, c.arm_b, c.answer_a, c.answer_b, "
            "v.winner FROM votes v JOIN comparisons c ON c.id = v.comparison_id ORDER BY v.created, v.rowid"
        ).fetchall()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*rows[0].keys(), "winner_arm"] if rows else _CSV_HEADER)
    for r in rows:
        writer.writerow([*r, {"a": r["arm_a"], "b": r["arm_b"]}.get(r["winner"], "")])
    return atomic_write_text(path, buf.getvalue())


_CSV_HEADER = [
    "comparison_id", "created", "voter", "prompt", "arm_a", "arm_b", "answer_a", "answer_b", "winner", "winner_arm",
]  # fmt: skip


# -- leaderboard ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardRow:
    """One arm's strengths on the Elo scale (1000 = average) with 95% bootstrap intervals, and its record."""

    arm: str
    elo: float
    elo_low: float
    elo_high: float
    bt: float
    bt_low: float
    bt_high: float
    votes: int
    wins: int
    losses: int
    ties: int
    both_bad: int

    def to_dict(self) -> dict:
        return asdict(self)


def _arrays(votes: Sequence[Vote]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Arm names, and per vote: index of A, index of B, and A's score (1 win, 0 loss, 0.5 tie/both bad)."""
    arms = sorted({str(v.arm_a) for v in votes} | {str(v.arm_b) for v in votes})
    index = {a: i for i, a in enumerate(arms)}
    ia = np.array([index[str(v.arm_a)] for v in votes], dtype=np.int64)
    ib = np.array([index[str(v.arm_b)] for v in votes], dtype=np.int64)
    sa = np.array([{"a": 1.0, "b": 0.0}.get(v.winner, 0.5) for v in votes])
    return arms, ia, ib, sa


def _online_elo(ia: np.ndarray, ib: np.ndarray, sa: np.ndarray, order: np.ndarray, n_arms: int, k: float):
    """Online Elo for several vote orders at once: `order` is (rounds, steps) of vote indices."""
    rounds = order.shape[0]
    ratings = np.full((rounds, n_arms), INITIAL)
    rows = np.arange(rounds)
    for t in range(order.shape[1]):
        a, b, s = ia[order[:, t]], ib[order[:, t]], sa[order[:, t]]
        expected = 1.0 / (1.0 + BASE ** ((ratings[rows, b] - ratings[rows, a]) / SCALE))
        ratings[rows, a] += k * (s - expected)
        ratings[rows, b] -= k * (s - expected)
    return ratings


def _bradley_terry(wins: np.ndarray, prior: float, iterations: int = 1000, tol: float = 1e-10) -> np.ndarray:
    """MM fit (Hunter 2004) of Bradley-Terry strengths for (rounds, M, M) win matrices, on the Elo scale.

    `prior` virtual ties between every pair keep strengths finite for undefeated arms and tie together arms
    that never met.
    """
    m = wins.shape[-1]
    w = wins + (prior / 2) * (1 - np.eye(m))
    games = w + np.swapaxes(w, -1, -2)
    won = w.sum(axis=-1)
    p = np.ones(wins.shape[:-1])
    for _ in range(iterations):
        denom = (games / (p[..., :, None] + p[..., None, :])).sum(axis=-1)
        new = won / denom
        new /= np.exp(np.log(new).mean(axis=-1, keepdims=True))
        done = np.max(np.abs(new - p)) < tol
        p = new
        if done:
            break
    return INITIAL + SCALE * np.log10(p)


def _win_matrices(ia, ib, sa, weights: np.ndarray, n_arms: int) -> np.ndarray:
    """(rounds, M, M) matrices: [i, j] = wins of i over j (ties half each), votes weighted per round."""
    rounds = weights.shape[0]
    out = np.zeros((rounds, n_arms * n_arms))
    ab, ba = ia * n_arms + ib, ib * n_arms + ia
    for r in range(rounds):
        out[r] += np.bincount(ab, weights[r] * sa, minlength=n_arms * n_arms)
        out[r] += np.bincount(ba, weights[r] * (1 - sa), minlength=n_arms * n_arms)
    return out.reshape(rounds, n_arms, n_arms)


def leaderboard(
    source: Workspace | Sequence[Vote], rounds: int = 1000, k: float = 16.0, prior: float = 1.0, seed: int = 0
) -> list[LeaderboardRow]:
    """Elo and Bradley-Terry strengths per arm with 95% bootstrap intervals, strongest (by BT) first.

    Ties and "both bad" both count as half a win for each side, in Elo and in Bradley-Terry (Chatbot Arena
    treats "tie (both bad)" the same way).

    Elo: online updates with K=`k` (16; Chatbot Arena's K=4 suits millions of votes, not a team's few dozen),
    replayed over `rounds` bootstrap resamples of the votes in random order; the rating is the median and the
    interval the 2.5-97.5 percentiles (Chatbot Arena's original method). Online Elo weighs recent votes more,
    so its interval stops shrinking once K's own noise dominates.
    Bradley-Terry: the maximum-likelihood fit (MM algorithm) on all votes, with `prior` virtual ties per pair
    so an undefeated arm stays finite; its interval comes from `rounds` bootstrap resamples and keeps shrinking
    as votes accumulate. Both are on the Elo scale (400 points = 10:1 odds, 1000 = average).
    """
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    votes = load_votes(source) if isinstance(source, Workspace) else list(source)
    if not votes:
        return []
    arms, ia, ib, sa = _arrays(votes)
    n, m = len(votes), len(arms)
    rng = np.random.default_rng(seed)
    boot_elo = _online_elo(ia, ib, sa, rng.integers(0, n, size=(rounds, n)), m, k)
    elo = np.median(boot_elo, axis=0)
    bt = _bradley_terry(_win_matrices(ia, ib, sa, np.ones((1, n)), m), prior)[0]
    counts = rng.multinomial(n, np.full(n, 1 / n), size=rounds).astype(float)
    boot_bt = _bradley_terry(_win_matrices(ia, ib, sa, counts, m), prior)
    elo_lo, elo_hi = np.percentile(boot_elo, [2.5, 97.5], axis=0)
    bt_lo, bt_hi = np.percentile(boot_bt, [2.5, 97.5], axis=0)
    rows = []
    for i, arm in enumerate(arms):
        record = _record(votes, arm)
        rows.append(
            LeaderboardRow(arm, *_round(elo[i], elo_lo[i], elo_hi[i], bt[i], bt_lo[i], bt_hi[i]), *record)
        )
    return sorted(rows, key=lambda r: (-r.bt, r.arm))


def _round(*values: float) -> list[float]:
    return [round(float(v), 1) for v in values]


def _record(votes: Sequence[Vote], arm: str) -> tuple[int, int, int, int, int]:
    """(votes, wins, losses, ties, both_bad) of `arm`."""
    mine = [v for v in votes if arm in (v.arm_a, v.arm_b)]
    wins = sum(v.winner_arm == arm for v in mine)
    ties = sum(v.winner == "tie" for v in mine)
    both_bad = sum(v.winner == "both_bad" for v in mine)
    return len(mine), wins, len(mine) - wins - ties - both_bad, ties, both_bad
