import numpy as np
import pytest

from evals.scorers import style


@pytest.mark.parametrize(
    ("answer", "reference", "low", "high"),
    [
        ("the cat sat on the mat", "the cat sat on the mat", 1.0, 1.0),
        ("the cat sat", "the cat sat on the mat", 0.6, 0.7),
        ("dogs bark loudly", "the cat sat on the mat", 0.0, 0.0),
        ("猫がマットの上に座った", "猫がマットの上に座った", 1.0, 1.0),
        ("Größe zählt", "größe ZÄHLT nicht", 0.75, 0.85),
    ],
)
def test_rouge_l(answer, reference, low, high):
    result = style.rouge_l(answer, reference)
    assert low <= result.score <= high
    assert result.passed is (result.score >= 0.3)


@pytest.mark.parametrize(
    ("answer", "reference", "reason"), [("", "ref", "empty answer"), ("a", " ", "empty reference")]
)
def test_rouge_l_empty_inputs_fail(answer, reference, reason):
    result = style.rouge_l(answer, reference)
    assert not result.passed and result.reason == reason


@pytest.mark.parametrize(
    ("answer", "reference", "score", "passed"),
    [
        ("one two three four", "a b c d", 1.0, True),
        ("one two", "a b c d", 0.5, True),
        ("one", "a b c d", 0.25, False),
        ("one two three four five six seven eight nine", "a b c d", 0.4444, False),
        ("", "a b", 0.0, False),
        ("x", "", 0.0, False),
    ],
)
def test_length_ratio(answer, reference, score, passed):
    result = style.length_ratio(answer, reference)
    assert (result.score, result.passed) == (score, passed)


def test_readability_separates_plain_from_dense_text():
    plain = "The cat sat on the mat. It was a good day."
    dense = (
        "Notwithstanding considerable methodological heterogeneity, the aforementioned investigations "
        "systematically demonstrated statistically significant interdependencies."
    )
    assert style.readability(plain, max_grade=8).passed
    dense_result = style.readability(dense, max_grade=8)
    assert not dense_result.passed and 0 < dense_result.score < 1
    assert "grade" in dense_result.reason
    assert style.readability(dense, min_grade=12).passed


def test_readability_of_empty_answer_fails():
    assert style.readability("", max_grade=8).reason == "empty answer"


@pytest.mark.parametrize(
    ("answer", "passed"),
    [
        ("Paris is the capital.", True),
        ("As an AI language model, I think Paris.", False),
        ("as a language model i cannot say", False),
        ("", True),
    ],
)
def test_banned_phrases_default_list(answer, passed):
    assert style.banned_phrases(answer).passed is passed


def test_banned_phrases_custom_and_case_sensitive():
    assert not style.banned_phrases("Kindly revert", ["kindly revert"]).passed
    assert style.banned_phrases("Kindly revert", ["kindly revert"], case_sensitive=True).passed


@pytest.mark.parametrize(
    ("answer", "min_count", "score", "passed"),
    [
        ("Ahoy! Captain Tuna here, matey.", 2, 1.0, True),
        ("Ahoy there.", 2, 0.5, False),
        ("Hello.", 1, 0.0, False),
    ],
)
def test_persona_markers(answer, min_count, score, passed):
    result = style.persona_markers(answer, ["ahoy", "matey", "Captain Tuna"], min_count)
    assert (result.score, result.passed) == (score, passed)


def test_embedding_similarity_with_a_callable(fake_embedder):
    same = style.embedding_similarity("red apples are sweet", "sweet red apples are", fake_embedder)
    other = style.embedding_similarity("red apples are sweet", "trains run on rails", fake_embedder)
    assert same.score == pytest.approx(1.0) and same.passed
    assert other.score < 0.5 and not other.passed


def test_embedding_similarity_of_empty_answer_fails(fake_embedder):
    assert style.embedding_similarity("", "ref", fake_embedder).reason == "empty answer"


def test_embedding_similarities_batches_one_call():
    calls = []

    def embedder(texts):
        calls.append(len(texts))
        return np.eye(len(texts), 8)[:, :8] + 1.0

    scores = style.embedding_similarities(["a", "b", "c"], ["x", "y", "z"], embedder)
    assert calls == [6] and len(scores) == 3


def test_embedding_similarities_length_mismatch():
    with pytest.raises(ValueError, match="2 answers but 1 references"):
        style.embedding_similarities(["a", "b"], ["x"], lambda t: np.ones((len(t), 3)))


def test_embedding_similarity_with_the_embedded_minilm(minilm):
    close = style.embedding_similarity(
        "Paris is the capital of France.", "France's capital city is Paris.", minilm
    )
    far = style.embedding_similarity(
        "Paris is the capital of France.", "Bake the bread for 40 minutes.", minilm
    )
    assert close.passed and close.score > far.score + 0.3
    assert not far.passed
