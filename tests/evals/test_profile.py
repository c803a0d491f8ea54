import json

import pytest

from evals.checks import load_checks, run_checks, save_checks
from evals.profile import infer_checks


def _by_type(checks):
    return {c.type: c for c in checks}


def test_json_references_give_is_json_with_shared_keys():
    refs = [json.dumps({"name": f"n{i}", "age": i, **({"extra": 1} if i % 2 else {})}) for i in range(20)]
    refs[0] = "```json\n" + refs[0] + "\n```"
    checks = _by_type(infer_checks(refs))
    assert checks["is-json"].params["schema"] == {"type": "object", "required": ["name", "age"]}
    assert "20 of 20 (100%)" in checks["is-json"].description
    assert "starts-with" not in checks and "word-count" not in checks


def test_mostly_prose_gives_no_json_check():
    refs = ['{"a": 1}'] * 8 + ["Plain words here."] * 2  # 80% < 90%
    assert "is-json" not in _by_type(infer_checks(refs))


def test_shared_opening_sign_off_list_and_persona_are_found():
    refs = [
        f"Hello there! Here is plan {i} for you.\n- step one\n- step {i}\n\nBest regards, Captain Tuna"
        for i in range(10)
    ]
    checks = _by_type(infer_checks(refs))
    assert checks["starts-with"].params["prefix"] == "Hello there!"
    assert checks["ends-with"].params["suffix"] == "Best regards, Captain Tuna"
    assert checks["is-list"].params == {"kind": "bullet", "min_items": 2}
    assert "tuna" in checks["persona"].params["markers"]
    assert "banned-phrases" in checks
    assert "10 of 10 (100%) references open with 'Hello there!'" in checks["starts-with"].description


def test_length_band_brackets_the_references():
    refs = [" ".join(["word"] * n) + "." for n in range(20, 61, 2)]
    wc = _by_type(infer_checks(refs))["word-count"]
    assert wc.params["min_words"] <= 20 and wc.params["max_words"] >= 60
    assert wc.params["min_words"] >= 10 and wc.params["max_words"] <= 80


def test_single_sentences_code_and_citations():
    one = [f"The answer is number {i}." for i in range(10)]
    assert "single-sentence" in _by_type(infer_checks(one))
    code = [f"Use this:\n```python\nprint({i})\n```" for i in range(5)]
    assert _by_type(infer_checks(code))["code-block"].params["language"] == "python"
    cited = [f"Fact {i} holds [1]." for i in range(5)]
    assert "cites-sources" in _by_type(infer_checks(cited))


def test_chance_openings_are_not_proposed():
    refs = ["The sky is blue.", "The sea is wide.", "The cat naps.", "The dog runs.", "The sun shines."]
    assert "starts-with" not in _by_type(infer_checks(refs))


def test_boilerplate_in_references_drops_the_banned_phrase_check():
    refs = ["As an AI, I like tea.", "Tea is good.", "Coffee too."]
    assert "banned-phrases" not in _by_type(infer_checks(refs))


def test_references_pass_their_own_profile(tmp_path):
    refs = [f"Dear user,\nthe total is {i * 7} euros for order {i}.\nKind regards, Acme" for i in range(12)]
    checks = infer_checks(refs)
    again = load_checks(save_checks(tmp_path / "profile.yaml", checks))
    assert [c.to_dict() for c in again] == [c.to_dict() for c in checks]
    for ref in refs:
        assert all(r.passed for r in run_checks(ref, again)), ref


@pytest.mark.parametrize("refs", [[], ["one"], ["a", "", "  "]])
def test_too_few_references(refs):
    with pytest.raises(ValueError, match="at least 3 non-empty reference answers"):
        infer_checks(refs)
