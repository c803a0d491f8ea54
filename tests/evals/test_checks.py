import json

import pytest

from evals.checks import (
    Check,
    checks_to_yaml,
    load_checks,
    merge_checks,
    parse_checks,
    run_checks,
    save_checks,
    score_batch,
    weighted_score,
)
from evals.registry import CHECK_TYPES

CHECKS_YAML = """
- type: is-json
  weight: 2
- type: regex
  value: '"status": "(ok|error)"'
- type: word-count
  max_words: 20
- type: rouge-l
  value: 0.3
- type: cites-sources
"""


@pytest.fixture
def checks_file(tmp_path):
    path = tmp_path / "checks.yaml"
    path.write_text(CHECKS_YAML)
    return path


def test_yaml_file_loads_with_value_shorthand_and_weights(checks_file):
    checks = load_checks(checks_file)
    assert [c.type for c in checks] == ["is-json", "regex", "word-count", "rouge-l", "cites-sources"]
    assert checks[0].weight == 2.0
    assert checks[1].params["pattern"] == '"status": "(ok|error)"'
    assert checks[3].params["threshold"] == 0.3


def test_json_file_with_a_checks_key_loads(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"checks": [{"type": "contains", "value": ["a", "b"], "mode": "all"}]}))
    (check,) = load_checks(path)
    assert check.params == {"values": ["a", "b"], "mode": "all", "case_sensitive": False}


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        (
            [{"type": "is-json"}, {"type": "no-such"}],
            r"checks\[1\] \(no-such\): field 'type': unknown check type",
        ),
        (
            [{"type": "regex", "value": "(unclosed"}],
            r"checks\[0\] \(regex\): field 'value'/'pattern' invalid regex",
        ),
        ([{"type": "regex"}], r"checks\[0\] \(regex\): field 'value'/'pattern' is required"),
        (
            [{"type": "json-schema", "value": {"type": "nope"}}],
            r"checks\[0\] \(json-schema\).*invalid JSON Schema",
        ),
        ([{"type": "word-count"}], r"field 'min_words' or 'max_words' is required"),
        (
            [{"type": "word-count", "min_words": 9, "max_words": 3}],
            r"'min_words' \(9\) is greater than 'max_words'",
        ),
        ([{"type": "word-count", "max_words": "ten"}], r"field 'max_words' must be an integer >= 0"),
        ([{"type": "is-json", "shcema": {}}], r"field 'shcema' is not a parameter of is-json"),
        ([{"type": "single-sentence", "value": 1}], r"field 'value' is not used by type 'single-sentence'"),
        ([{"type": "regex", "value": "a", "pattern": "b"}], r"fields 'value' and 'pattern' both given"),
        ([{"type": "is-json", "weight": -1}], r"field 'weight' must be a number >= 0"),
        ([{"type": "contains", "value": []}], r"field 'value'/'values' must be a non-empty string or a list"),
        (
            [{"type": "is-list", "kind": "dashes"}],
            r"field 'value'/'kind' must be one of bullet, numbered, any",
        ),
        ([{"type": "rouge-l", "value": 1.5}], r"field 'value'/'threshold' must be a number from 0 to 1"),
        ([{"weight": 1}], r"checks\[0\] \(\?\): field 'type' is required"),
        (["is-json"], r"checks\[0\] \(\?\): must be a mapping"),
        (
            [{"type": "is-json"}, {"type": "is-json"}],
            r"checks\[1\] \(is-json\): field 'name': 'is-json' is used twice",
        ),
        ({"type": "is-json"}, r"expected a list of checks"),
    ],
)
def test_bad_entries_name_the_index_and_field(entries, match):
    with pytest.raises(ValueError, match=match):
        parse_checks(entries)


def test_bad_file_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- type: regex\n  value: '['\n")
    with pytest.raises(ValueError, match=r"bad.yaml\[0\] \(regex\)"):
        load_checks(path)
    path.write_text("- type: [unclosed\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: not valid YAML"):
        load_checks(path)
    with pytest.raises(ValueError, match="not found"):
        load_checks(tmp_path / "missing.yaml")


def test_run_checks_scores_and_weighs(checks_file):
    checks = load_checks(checks_file)
    results = run_checks('{"status": "ok"}', checks, reference='{"status": "ok"}')
    by_name = {r.name: r for r in results}
    assert by_name["is-json"].passed and by_name["regex"].passed and by_name["word-count"].passed
    assert by_name["rouge-l"].score == 1.0
    assert by_name["cites-sources"].skipped and "not a RAG arm" in by_name["cites-sources"].reason
    assert weighted_score(results) == 1.0

    bad = run_checks("Status is fine, thanks for asking!", checks, reference='{"status": "ok"}')
    # is-json 0 (weight 2), regex 0, word-count 1, rouge-l 0.4 -> (0 + 0 + 1 + 0.4) / 5
    assert weighted_score(bad) == pytest.approx((1 + {r.name: r for r in bad}["rouge-l"].score) / 5, abs=1e-4)


def test_missing_reference_and_embedder_skip_not_fail():
    checks = parse_checks([{"type": "rouge-l"}, {"type": "similarity"}, {"type": "exact-match"}])
    results = run_checks("anything", checks)
    assert all(r.skipped and r.weight == 0 for r in results)
    assert weighted_score(results) is None


def test_rag_checks_fail_on_an_empty_retrieval_but_skip_without_one():
    (check,) = parse_checks([{"type": "cites-sources"}])
    assert run_checks("x", [check], sources=None)[0].skipped
    empty = run_checks("x", [check], sources=[])[0]
    assert not empty.skipped and not empty.passed


def test_aliases_map_to_types():
    (check,) = parse_checks([{"type": "contains-all", "value": ["a", "b"]}])
    assert check.type == "contains" and check.params["mode"] == "all"


def test_exact_match_defaults_to_the_reference():
    (check,) = parse_checks([{"type": "exact-match"}])
    assert run_checks("Paris", [check], reference="paris")[0].passed
    (fixed,) = parse_checks([{"type": "exact-match", "value": "Rome"}])
    assert not run_checks("Paris", [fixed])[0].skipped


def test_yaml_round_trip_keeps_every_check(tmp_path):
    checks = parse_checks(
        [
            {"type": "is-json", "value": {"type": "object", "required": ["a"]}, "weight": 3, "name": "shape"},
            {"type": "starts-with", "value": "Dear", "case_sensitive": True, "description": "house style"},
            {"type": "word-count", "min_words": 5, "max_words": 50},
            {"type": "banned-phrases"},
        ]
    )
    for suffix in (".yaml", ".json"):
        path = save_checks(tmp_path / f"out{suffix}", checks)
        again = load_checks(path)
        assert [c.to_dict() for c in again] == [c.to_dict() for c in checks]
    assert "description: house style" in checks_to_yaml(checks)


def test_merge_checks_adds_and_replaces_by_name():
    global_checks = parse_checks([{"type": "is-json"}, {"type": "word-count", "max_words": 10}])
    merged = merge_checks(
        global_checks, [{"type": "word-count", "max_words": 99}, {"type": "contains", "value": "x"}]
    )
    assert [c.name for c in merged] == ["is-json", "word-count", "contains"]
    assert merged[1].params["max_words"] == 99
    assert merge_checks(global_checks, None) == global_checks
    with pytest.raises(ValueError, match=r"row 3 checks\[0\]"):
        merge_checks(global_checks, [{"type": "nope"}], where="row 3")


def test_score_batch_matches_run_checks_and_batches_similarity(fake_embedder):
    checks = parse_checks([{"type": "similarity", "value": 0.5}, {"type": "word-count", "max_words": 3}])
    answers, refs = ["red apples", "blue sky today ok", "x"], ["red apples", "green grass", None]
    calls = []

    def counting(texts):
        calls.append(len(texts))
        return fake_embedder(texts)

    batch = score_batch(answers, checks, refs, embedder=counting)
    assert calls == [4]  # two answers with references + their references, once
    assert [r.name for r in batch[0]] == ["similarity", "word-count"]
    assert batch[0][0].passed and not batch[1][0].passed and batch[2][0].skipped
    for answer, ref, results in zip(answers, refs, batch, strict=True):
        assert results == run_checks(answer, checks, reference=ref, embedder=fake_embedder)


def test_every_registered_type_runs_on_unicode_and_empty_answers():
    sources = [{"n": 1, "source": "s", "text": "Zoë lives in 東京."}]
    for name, kind in CHECK_TYPES.items():
        params = {p.name: _example_value(p.name) for p in kind.params if p.required}
        if name in ("word-count", "sentence-count", "char-count"):
            params = {kind.params[1].name: 5}
        check = Check(name, params)
        for answer in ("", "Zoë lives in 東京 [1]. 🎉"):
            (result,) = run_checks(
                answer, [check], "Zoë lives in 東京.", sources, embedder=lambda t: [[1.0, 0]] * len(t)
            )
            assert 0.0 <= result.score <= 1.0 and isinstance(result.reason, str) and result.reason


def _example_value(param: str):
    return {"schema": {"type": "object"}, "pattern": "東京", "values": ["Zoë"], "prefix": "Zoë", "suffix": "🎉",
            "markers": ["Zoë"]}[param]  # fmt: skip


def test_weighted_score_ignores_zero_weight_and_skipped():
    checks = parse_checks(
        [{"type": "is-json", "weight": 0}, {"type": "contains", "value": "ok"}, {"type": "rouge-l"}]
    )
    assert weighted_score(run_checks("ok", checks)) == 1.0
