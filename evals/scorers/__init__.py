"""Pure scorers: `answer (+ reference, + sources) -> Score(score in [0, 1], passed, reason)`.

Format scorers live in `format`, style scorers in `style`, RAG scorers in `rag`; `evals.checks` maps check
type names (`is-json`, `regex`, ...) onto them.
"""

from evals.scorers.base import Score

__all__ = ["Score"]
