"""tuner.validate: the report counts what training will really see, measured with the model's own chat template."""

from __future__ import annotations

import copy
import json

import pytest

from tuner.data import Example, LoadedDataset, SkippedRow, load_dataset, split_examples
from tuner.validate import MAX_LISTED, histogram, template_tokens, validate


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def token_count(tokenizer, messages) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


@pytest.fixture(scope="module")
def alpaca(shared_data):
    return load_dataset(shared_data / "llamafactory" / "alpaca_en_demo.json")


def test_alpaca_demo_report_counts_and_lengths(alpaca, tokenizer):
    report = validate(alpaca, tokenizer, max_seq_len=512, eval_fraction=0.1, seed=42)
    lengths = [token_count(tokenizer, ex.messages) for ex in alpaca.examples]
    assert (report.rows_read, report.usable, report.skipped, report.empty_answers) == (999, 999, 0, 0)
    assert report.duplicates == 14
    assert report.duplicate_rows[0] == (276, 118)
    assert alpaca.examples[275].messages == alpaca.examples[117].messages
    assert (report.tokens.min, report.tokens.max, report.tokens.total) == (
        min(lengths),
        max(lengths),
        sum(lengths),
    )
    assert report.tokens.min <= report.tokens.median <= report.tokens.p95 <= report.tokens.max
    assert sorted(lengths)[949] == report.tokens.p95  # nearest rank: the 950th of 999
    assert report.over_max_seq_len == sum(n > 512 for n in lengths) > 0
    assert (
        report.over_max_rows
        == [ex.row for ex, n in zip(alpaca.examples, lengths, strict=True) if n > 512][:MAX_LISTED]
    )
    assert (report.train_size, report.eval_size) == (899, 100)
    assert sum(report.histogram["counts"]) == 999
    assert len(report.examples) == 999


def test_report_split_matches_split_examples(alpaca, tokenizer):
    report = validate(alpaca, tokenizer, 2048, 0.25, seed=7)
    train, held_out = split_examples(report.examples, 0.25, 7)
    assert (report.train_size, report.eval_size) == (len(train), len(held_out)) == (749, 250)
    assert report.over_max_seq_len == 0


def test_skipped_rows_first_twenty_listed_all_counted(tmp_path, tokenizer):
    rows = [{"instruction": f"q{i}", "output": "" if i % 2 else f"a{i}"} for i in range(60)]
    rows += [{"instruction": "q", "output": 5}] * 3
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows))
    report = validate(load_dataset(path), tokenizer, 256, 0.1, 0)
    assert (report.rows_read, report.usable, report.skipped) == (63, 30, 33)
    assert report.empty_answers == 30
    assert report.skip_reasons == {"empty answer": 30, "not a string": 3}
    assert len(report.skipped_rows) == MAX_LISTED
    assert [s.row for s in report.skipped_rows[:3]] == [2, 4, 6]
    text = report.format_text()
    assert "30 x empty answer: rows 2, 4, 6, 8, 10, 12, 14, 16, ..." in text
    assert "Rows        63 read, 30 usable, 33 skipped" in text


def test_rows_the_chat_template_rejects_are_skipped_with_the_reason(tokenizer):
    strict = copy.deepcopy(tokenizer)
    strict.chat_template = (
        "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('roles must alternate user/assistant') }}{% endif %}"
        "{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    )
    examples = [
        Example([user("q"), assistant("a")], row=1),
        Example([user("q"), user("again"), assistant("a")], row=2),
    ]
    report = validate(LoadedDataset("x.json", "openai", 2, examples, []), strict, 64, 0.0, 0)
    assert (report.usable, report.skipped) == (1, 1)
    assert report.skipped_rows[0].row == 2
    assert "roles must alternate" in report.skipped_rows[0].reason
    assert [ex.row for ex in report.examples] == [1]


@pytest.mark.parametrize("max_seq_len", [1, 10, "template"])
def test_max_seq_len_smaller_than_the_template_is_refused(alpaca, tokenizer, max_seq_len):
    overhead = template_tokens(tokenizer)
    assert overhead == token_count(tokenizer, [user(""), assistant("")])
    if max_seq_len == "template":
        max_seq_len = overhead
    with pytest.raises(ValueError, match=rf"max_seq_len={max_seq_len} is smaller than the chat template itself.*"
                       rf"takes {overhead} tokens"):  # fmt: skip
        validate(alpaca, tokenizer, max_seq_len, 0.1, 0)


@pytest.mark.parametrize("max_seq_len", [0, -5, 1.5, "512", True])
def test_max_seq_len_must_be_a_positive_integer(alpaca, tokenizer, max_seq_len):
    with pytest.raises(ValueError, match="max_seq_len must be a positive integer"):
        validate(alpaca, tokenizer, max_seq_len, 0.1, 0)


def test_answers_starting_beyond_max_seq_len_are_counted(tokenizer):
    long_prompt = " ".join(["word"] * 300)
    examples = [
        Example([user(long_prompt), assistant("ok")], row=1),
        Example([user("short"), assistant(" ".join(["word"] * 300))], row=2),
        Example([user("short"), assistant("ok")], row=3),
    ]
    report = validate(LoadedDataset("x.json", "alpaca", 3, examples, []), tokenizer, 128, 0.0, 0)
    assert report.over_max_seq_len == 2
    assert report.over_max_rows == [1, 2]
    assert report.prompt_over_max_seq_len == 1
    assert "in 1 the first answer starts beyond it" in report.format_text()


def test_identity_report_flags_unfilled_placeholders(shared_data, tokenizer):
    report = validate(load_dataset(shared_data / "llamafactory" / "identity.json"), tokenizer, 1024, 0.1, 0)
    assert report.placeholders == {"name": 77, "author": 60}
    assert "Placeholders  unfilled: {{name}} in 77, {{author}} in 60 examples" in report.format_text()


def test_json_round_trip_leaves_out_the_examples(alpaca, tokenizer):
    report = validate(alpaca, tokenizer, 512, 0.1, 42)
    data = json.loads(report.to_json())
    assert "examples" not in data
    assert data["usable"] == 999 and data["tokens"]["max"] == report.tokens.max
    assert data["histogram"] == report.histogram
    assert data == json.loads(json.dumps(report.to_dict()))


def test_format_text_is_readable(alpaca, tokenizer):
    text = validate(alpaca, tokenizer, 512, 0.1, 42).format_text()
    assert text.splitlines()[1] == "Rows        999 read, 999 usable, 0 skipped"
    assert "Duplicates  14 exact repeats (row = earlier row: 276 = 118" in text
    assert "Split       899 train / 100 eval (eval_fraction 0.1, seed 42)" in text
    assert "exceed max_seq_len 512 (rows 13, 64," in text
    assert "<- max_seq_len" in text


@pytest.mark.parametrize(
    ("lengths", "bins", "edges", "counts"),
    [
        ([5], 20, [5, 6], [1]),
        ([1, 2, 3, 4], 20, [1, 2, 3, 4, 5], [1, 1, 1, 1]),
        ([0, 10, 19, 20], 2, [0, 11, 22], [2, 2]),
        ([3, 3, 100], 4, [3, 28, 53, 78, 103], [2, 0, 0, 1]),
    ],
)
def test_histogram_bins_cover_every_length(lengths, bins, edges, counts):
    assert histogram(lengths, bins) == {"edges": edges, "counts": counts}


def test_template_that_cannot_render_a_chat_is_an_error(alpaca, tokenizer):
    broken = copy.deepcopy(tokenizer)
    broken.chat_template = "{{ raise_exception('unsupported') }}"
    with pytest.raises(ValueError, match="the model's chat template cannot render a user/assistant exchange"):
        validate(alpaca, broken, 512, 0.1, 0)


def test_no_renderable_example_is_an_error(tokenizer):
    broken = copy.deepcopy(tokenizer)
    broken.chat_template = (
        "{% for m in messages %}{% if m['content'] %}{{ raise_exception('no') }}{% endif %}{% endfor %}"
    )
    examples = [Example([user("q"), assistant("a")], row=1)]
    with pytest.raises(ValueError, match=r"x\.json: the chat template could not render any example"):
        validate(LoadedDataset("x.json", "alpaca", 1, examples, [SkippedRow(2, "r")]), broken, 64, 0.0, 0)


class WordTokenizer:
    """A stand-in without offsets (like a slow tokenizer): one token per whitespace-separated word."""

    def apply_chat_template(self, messages, tools=None, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<{m['role']}> {m['content']} </s> " for m in messages)
        return text + ("<assistant> " if add_generation_prompt else "")

    def __call__(self, texts, add_special_tokens=False, return_offsets_mapping=False):
        if return_offsets_mapping:
            raise NotImplementedError("no offsets")
        return {"input_ids": [text.split() for text in texts]}


@pytest.mark.parametrize(("max_seq_len", "over", "prompt_over"), [(8, 1, 0), (6, 1, 1), (9, 0, 0)])
def test_tokenizer_without_offsets_is_measured_directly(max_seq_len, over, prompt_over):
    examples = [Example([user("one two three"), assistant("four five")], row=1)]
    report = validate(
        LoadedDataset("x.json", "alpaca", 1, examples, []), WordTokenizer(), max_seq_len, 0.0, 0
    )
    assert template_tokens(WordTokenizer()) == 4  # <user> </s> <assistant> </s>
    assert (report.tokens.min, report.tokens.max) == (9, 9)
    # the part before the answer, "<user> one two three </s> <assistant>", is 6 tokens
    assert (report.over_max_seq_len, report.prompt_over_max_seq_len) == (over, prompt_over)
