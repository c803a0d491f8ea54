import re

import pytest

from evals.scorers import format as fmt

SCHEMA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
}


@pytest.mark.parametrize(
    ("answer", "score", "passed", "reason"),
    [
        ('{"name": "Ana"}', 1.0, True, "valid JSON dict"),
        ("[1, 2, 3]", 1.0, True, "valid JSON list"),
        ('```json\n{"name": "Ana"}\n```', 1.0, True, "inside a code fence"),
        ('  \n```\n["a"]\n```\n', 1.0, True, "inside a code fence"),
        ('{"name": "Zoë", "city": "東京"}', 1.0, True, "valid JSON"),
        ('{"name": "Ana"} I hope this helps!', 0.5, False, "followed by extra text 'I hope this helps!'"),
        ('Here you go: {"name": "Ana"}', 0.0, False, "not JSON"),
        ('{"name": "Ana",}', 0.0, False, "invalid JSON"),
        ('{"name": "Ana"', 0.0, False, "invalid JSON"),
        ("42", 0.0, False, "not JSON"),
        ("", 0.0, False, "empty answer"),
        ("   ", 0.0, False, "empty answer"),
        ('```json\n{"a": 1}\n```\nDone.', 0.0, False, "not JSON"),
    ],
)
def test_is_json(answer, score, passed, reason):
    result = fmt.is_json(answer)
    assert (result.score, result.passed) == (score, passed)
    assert reason in result.reason


def test_is_json_without_fence_allowance_rejects_fenced_json():
    assert not fmt.is_json('```json\n{"a": 1}\n```', allow_fence=False).passed


@pytest.mark.parametrize(
    ("answer", "score", "passed", "where"),
    [
        ('{"name": "Ana", "age": 3}', 1.0, True, "matches the schema"),
        ('```json\n{"name": "Ana"}\n```', 1.0, True, "inside a code fence"),
        ('{"name": "Ana", "age": "three"}', 0.5, False, "$.age"),
        ('{"age": 3}', 0.5, False, "'name' is a required property"),
        ("not json", 0.0, False, "not JSON"),
    ],
)
def test_json_schema(answer, score, passed, where):
    result = fmt.json_schema(answer, SCHEMA)
    assert (result.score, result.passed) == (score, passed)
    assert where in result.reason


def test_json_schema_accepts_a_compiled_validator():
    validator = fmt.compile_schema(SCHEMA)
    assert fmt.json_schema('{"name": "x"}', validator).passed
    assert not fmt.json_schema('{"name": 1}', validator).passed


@pytest.mark.parametrize("schema", [{"type": "nonsense"}, {"required": "name"}, ["not", "a", "mapping"]])
def test_invalid_json_schema_is_a_value_error(schema):
    with pytest.raises(ValueError, match="JSON Schema"):
        fmt.compile_schema(schema)


@pytest.mark.parametrize(
    ("answer", "passed", "at"),
    [
        ('Sure! {"a": 1} Anything else?', True, "at char 6"),
        ('Result:\n```json\n{"a": [1, 2]}\n```\nBye', True, "at char 16"),
        ("a set {not json} then [1, 2]", True, "list found"),
        ("no braces at all", False, "no JSON"),
        ("", False, "empty answer"),
    ],
)
def test_contains_json(answer, passed, at):
    result = fmt.contains_json(answer)
    assert result.passed is passed
    assert at in result.reason


def test_contains_json_checks_the_schema():
    assert not fmt.contains_json('ok {"age": 3}', SCHEMA).passed
    assert fmt.contains_json('ok {"name": "x"}', SCHEMA).passed


@pytest.mark.parametrize(
    ("answer", "pattern", "ignore_case", "passed"),
    [
        ("Order #123 shipped", r"#\d+", False, True),
        ("Order shipped", r"#\d+", False, False),
        ("first line\nSTATUS: ok", r"^status: (ok|error)$", True, True),
        ("first line\nSTATUS: ok", r"^status: (ok|error)$", False, False),
        ("Größe: 5", r"größe", True, True),
        ("", r".+", False, False),
    ],
)
def test_regex_and_not_regex_are_complements(answer, pattern, ignore_case, passed):
    assert fmt.regex(answer, pattern, ignore_case).passed is passed
    assert fmt.not_regex(answer, pattern, ignore_case).passed is not passed


def test_invalid_regex_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=re.escape("invalid regex '(unclosed'")):
        fmt.regex("x", "(unclosed")


@pytest.mark.parametrize(
    ("answer", "value", "mode", "case_sensitive", "score", "passed"),
    [
        ("The capital is Paris.", "paris", "any", False, 1.0, True),
        ("The capital is Paris.", "paris", "any", True, 0.0, False),
        ("red and blue", ["green", "blue"], "any", False, 1.0, True),
        ("red and blue", ["green", "blue"], "all", False, 0.5, False),
        ("red, green and blue", ["green", "blue"], "all", False, 1.0, True),
        ("Ich heiße Jürgen", "JÜRGEN", "any", False, 1.0, True),
        ("", "x", "any", False, 0.0, False),
    ],
)
def test_contains(answer, value, mode, case_sensitive, score, passed):
    result = fmt.contains(answer, value, mode, case_sensitive)
    assert (result.score, result.passed) == (score, passed)


@pytest.mark.parametrize(
    ("answer", "value", "score", "passed"),
    [
        ("Happy to help.", ["As an AI", "sorry"], 1.0, True),
        ("As an ai, I am sorry.", ["As an AI", "sorry"], 0.0, False),
        ("Sorry, no.", ["As an AI", "sorry"], 0.5, False),
        ("", "anything", 1.0, True),
    ],
)
def test_not_contains(answer, value, score, passed):
    result = fmt.not_contains(answer, value)
    assert (result.score, result.passed) == (score, passed)


@pytest.mark.parametrize(
    ("answer", "prefix", "case_sensitive", "passed"),
    [
        ("Dear customer,\nthanks", "Dear customer,", False, True),
        ("  dear   customer, thanks", "Dear customer,", False, True),
        ("dear customer, thanks", "Dear customer,", True, False),
        ("Hi there", "Dear", False, False),
        ("", "Dear", False, False),
        ("¡Hola! ¿Qué tal?", "¡hola!", False, True),
    ],
)
def test_starts_with(answer, prefix, case_sensitive, passed):
    assert fmt.starts_with(answer, prefix, case_sensitive).passed is passed


@pytest.mark.parametrize(
    ("answer", "suffix", "passed"),
    [
        ("Thanks.\n\nBest regards,\nAcme Support\n", "Best regards, Acme Support", True),
        ("Thanks. Cheers", "Best regards, Acme Support", False),
        ("谢谢。祝好", "祝好", True),
        ("", "x", False),
    ],
)
def test_ends_with(answer, suffix, passed):
    assert fmt.ends_with(answer, suffix).passed is passed


@pytest.mark.parametrize(
    ("answer", "low", "high", "score", "passed"),
    [
        ("one two three four", 2, 5, 1.0, True),
        ("one two", 4, None, 0.5, False),
        ("one two three four five six", None, 3, 0.5, False),
        ("", 1, None, 0.0, False),
        ("", None, 3, 1.0, True),
        ("don't re-use it", 3, 3, 1.0, True),
        ("Über größere Straßen", 3, 3, 1.0, True),
    ],
)
def test_word_count(answer, low, high, score, passed):
    result = fmt.word_count(answer, low, high)
    assert (result.score, result.passed) == (score, passed)


@pytest.mark.parametrize(
    ("answer", "n"),
    [
        ("One. Two! Three?", 3),
        ("Dr. Smith met J. Doe at 3.5 km. Then left.", 2),
        ("Use e.g. tea. Or coffee.", 2),
        ("你好。我很好！", 2),
        ("No end mark", 1),
        ("Title\n\nBody text", 2),
        ("", 0),
    ],
)
def test_sentence_count_and_single_sentence(answer, n):
    assert fmt.sentence_count(answer, n, n).passed
    assert not fmt.sentence_count(answer, n + 1, None).passed
    assert fmt.single_sentence(answer).passed is (n == 1)


def test_char_count_trims_whitespace():
    assert fmt.char_count("  héllo  ", 5, 5).passed
    assert not fmt.char_count("héllo!", None, 5).passed


@pytest.mark.parametrize(
    ("answer", "kind", "min_items", "passed"),
    [
        ("Steps:\n- one\n- two\n- three", "bullet", 3, True),
        ("Steps:\n* one\n• two", "bullet", 2, True),
        ("1. one\n2) two", "numbered", 2, True),
        ("1. one\n2) two", "bullet", 2, False),
        ("- only one", "any", 2, False),
        ("a - b - c in one line", "any", 2, False),
        ("", "any", 1, False),
    ],
)
def test_is_list(answer, kind, min_items, passed):
    assert fmt.is_list(answer, kind, min_items).passed is passed


@pytest.mark.parametrize(
    ("answer", "language", "score", "passed"),
    [
        ("Run:\n```python\nprint(1)\n```", None, 1.0, True),
        ("Run:\n```python\nprint(1)\n```", "python", 1.0, True),
        ("Run:\n```Python\nprint(1)\n```", "python", 1.0, True),
        ("Run:\n```bash\nls\n```", "python", 0.5, False),
        ("Run:\n```python\nprint(1)", None, 0.0, False),
        ("~~~\nplain\n~~~", None, 1.0, True),
        ("no code", None, 0.0, False),
    ],
)
def test_code_block(answer, language, score, passed):
    result = fmt.code_block(answer, language)
    assert (result.score, result.passed) == (score, passed)


def test_unclosed_fence_is_reported():
    assert "never closed" in fmt.code_block("```python\nx = 1").reason


@pytest.mark.parametrize(
    ("answer", "expected", "case_sensitive", "passed"),
    [
        ("Paris", "paris", False, True),
        ("  Paris \n", "Paris", True, True),
        ("Paris", "paris", True, False),
        ("Paris, France", "Paris", False, False),
        ("", "Paris", False, False),
    ],
)
def test_exact_match(answer, expected, case_sensitive, passed):
    assert fmt.exact_match(answer, expected, case_sensitive).passed is passed
