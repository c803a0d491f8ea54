import json

import pytest

from evals.forgetting import GeneralQuestion, general_questions, score_forgetting


def test_built_in_set_is_well_formed():
    questions = general_questions()
    assert 30 <= len(questions) <= 40
    assert len({q.id for q in questions}) == len(questions)
    assert len({q.category for q in questions}) >= 5
    assert all(q.prompt.endswith("?") or q.prompt.endswith(".") for q in questions)


@pytest.mark.parametrize(
    ("expected", "answer", "correct"),
    [
        (("Paris",), "The capital of France is paris.", True),
        (("Paris",), "Lyon", False),
        (("4", "four"), "2 + 2 = 4", True),
        (("4", "four"), "Four!", True),
        (("4", "four"), "It is 14.", False),
        (("4", "four"), "fourteen", False),
        (("small", "little"), "Little, of course.", True),
        (("0", "zero"), "0°C", True),
        (("Paris",), "", False),
    ],
)
def test_answers_match_whole_words_case_insensitively(expected, answer, correct):
    assert GeneralQuestion("q", "c", "p", expected).is_correct(answer) is correct


def _perfect_answers(questions):
    return [q.expected[0] for q in questions]


def test_drop_against_base_and_regressions():
    questions = general_questions()
    base = _perfect_answers(questions)
    ft = list(base)
    ft[0], ft[1], ft[2] = "no idea", "I don't know", "hmm"
    report = score_forgetting({"base": base, "ft": ft, "ft+rag": base}, questions)
    n = len(questions)
    assert report.arm("base").accuracy == 1.0 and report.arm("base").drop is None
    assert report.arm("ft").correct == n - 3
    assert report.arm("ft").drop == pytest.approx(3 / n, abs=1e-4)
    assert report.arm("ft+rag").drop == 0.0
    assert [q.id for q in report.regressions("ft")] == [q.id for q in questions[:3]]
    assert report.arm("ft").by_category[questions[0].category] < 1.0
    data = json.loads(json.dumps(report.to_dict()))
    assert data["regressions"]["ft"] == [q.id for q in questions[:3]]


def test_without_a_base_arm_there_is_no_drop():
    questions = general_questions()
    report = score_forgetting({"ft": _perfect_answers(questions)}, questions)
    assert report.base_arm is None and report.arm("ft").drop is None and report.regressions("ft") == []


@pytest.mark.parametrize(
    ("answers", "match"),
    [
        ({}, "no arms to score"),
        ({"base": ["Paris"]}, r"arm 'base' has 1 answers for \d+ questions"),
    ],
)
def test_bad_answer_sets(answers, match):
    with pytest.raises(ValueError, match=match):
        score_forgetting(answers)


def test_bad_question_file_names_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"id": "a", "category": "c", "prompt": "p", "expected": ["x"]}\n{"id": "b", "expected": []}\n'
    )
    with pytest.raises(ValueError, match="line 2"):
        general_questions(path)
