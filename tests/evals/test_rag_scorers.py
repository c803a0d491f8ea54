import pytest

from evals.scorers import rag

SOURCES = [
    {"n": 1, "source": "paris.txt", "text": "Paris is the capital and largest city of France."},
    {"n": 2, "source": "seine.txt", "text": "The Seine flows through Paris into the English Channel."},
]


@pytest.mark.parametrize(
    ("answer", "cited"),
    [
        ("Paris [1] and the Seine [2].", [1, 2]),
        ("See [2, 1] and [1].", [2, 1]),
        ("Ranges [1-3] work.", [1, 2, 3]),
        ("Arrays like x[i] or [a] are not citations.", []),
        ("", []),
    ],
)
def test_citations(answer, cited):
    assert rag.citations(answer) == cited


@pytest.mark.parametrize(
    ("answer", "min_citations", "score", "passed", "reason"),
    [
        ("Paris is the capital [1].", 1, 1.0, True, "cites [1]"),
        ("Paris [1] on the Seine [2].", 2, 1.0, True, "cites [1, 2]"),
        ("Paris is the capital [1].", 2, 1.0, False, "cites [1]"),
        ("Paris [1], says [7].", 1, 0.5, False, "[7] are not among the 2 sources"),
        ("Paris is the capital.", 1, 0.0, False, "no [n] citation"),
        ("", 1, 0.0, False, "no [n] citation"),
    ],
)
def test_cites_sources(answer, min_citations, score, passed, reason):
    result = rag.cites_sources(answer, SOURCES, min_citations)
    assert (result.score, result.passed) == (score, passed)
    assert reason in result.reason


def test_cites_sources_without_sources():
    assert "no sources were retrieved" in rag.cites_sources("Paris.", []).reason
    assert not rag.cites_sources("Paris [1].", []).passed


@pytest.mark.parametrize(
    ("sources", "match"),
    [
        ([{"source": "a", "text": "t"}], r"sources\[0\]\['n'\] must be an integer"),
        ([{"n": 1, "source": "a", "text": "t"}, {"n": "2", "text": "t"}], r"sources\[1\]\['n'\]"),
        ([{"n": 1, "source": "a"}], r"sources\[0\]\['text'\] must be a string"),
        (["just text"], r"sources\[0\] must be a dict"),
    ],
)
def test_malformed_sources_are_named(sources, match):
    with pytest.raises(ValueError, match=match):
        rag.cites_sources("x [1]", sources)


@pytest.mark.parametrize(
    ("answer", "score", "passed"),
    [
        ("Paris is the capital of France [1]. The Seine flows through Paris [2].", 1.0, True),
        ("Paris is the capital of France. Bananas grow on tall purple trees.", 0.5, False),
        ("Quantum chromodynamics explains gluons.", 0.0, False),
        ("", 0.0, False),
    ],
)
def test_support_proxy_by_overlap(answer, score, passed):
    result = rag.support_proxy(answer, SOURCES)
    assert (result.score, result.passed) == (score, passed)
    assert result.reason.startswith("proxy:") or result.reason == "empty answer"


def test_support_proxy_without_retrieved_text():
    assert rag.support_proxy("Paris is nice.", []).reason == "no retrieved text to support the answer"


def test_support_proxy_with_an_embedder(fake_embedder):
    result = rag.support_proxy(
        "The Seine flows through Paris into the English Channel.", SOURCES, fake_embedder
    )
    assert result.passed and "cosine" in result.reason
    assert not rag.support_proxy("Cats purr.", SOURCES, fake_embedder).passed
