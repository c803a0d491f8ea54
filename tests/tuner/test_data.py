"""tuner.data: every supported file type and row format becomes the expected messages; bad input is reported."""

from __future__ import annotations

import copy
import json
import re

import pytest

from tuner.data import (
    Example,
    fill_placeholders,
    find_placeholders,
    load_dataset,
    split_examples,
    tool_roles_supported,
)


def write(tmp_path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


# --- formats ------------------------------------------------------------------------------------------------


def test_alpaca_rows_become_messages_with_input_system_and_history(tmp_path):
    rows = [
        {"instruction": "Add.", "input": "2 + 2", "output": "4"},
        {"instruction": "Hi", "input": "", "output": "Hello!", "system": "Be terse."},
        {"instruction": "And 3?", "output": "3", "history": [["Count to 2", "1 2"], ["Again", "1 2"]]},
    ]
    ds = load_dataset(write(tmp_path, "a.json", rows))
    assert ds.format == "alpaca"
    assert [ex.messages for ex in ds.examples] == [
        [user("Add.\n2 + 2"), assistant("4")],
        [system("Be terse."), user("Hi"), assistant("Hello!")],
        [
            user("Count to 2"),
            assistant("1 2"),
            user("Again"),
            assistant("1 2"),
            user("And 3?"),
            assistant("3"),
        ],
    ]
    assert [ex.row for ex in ds.examples] == [1, 2, 3]
    assert ds.rows_read == 3 and ds.skipped == []


@pytest.mark.parametrize(
    "content",
    [
        {"data": [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}]},
        {"train": [{"instruction": "a", "output": "b"}], "test": [{"instruction": "c", "output": "d"}]},
        {"instruction": ["a", "c"], "output": ["b", "d"]},  # columnar
    ],
    ids=["wrapped", "splits", "columnar"],
)
def test_json_object_of_arrays_is_read_as_rows(tmp_path, content):
    ds = load_dataset(write(tmp_path, "obj.json", content))
    assert [ex.messages for ex in ds.examples] == [[user("a"), assistant("b")], [user("c"), assistant("d")]]


def test_openai_messages_with_content_parts_and_developer_role(tmp_path):
    rows = [
        {"messages": [system("S"), user("q"), assistant("a")]},
        {
            "messages": [
                {"role": "developer", "content": [{"type": "text", "text": "Rules"}]},
                {
                    "role": "user",
                    "content": [{"type": "text", "value": "Part 1. "}, {"type": "text", "text": "2"}],
                },
                {"role": "assistant", "content": [{"type": "text", "value": "ok"}], "weight": 1},
            ]
        },
    ]
    ds = load_dataset(write(tmp_path, "chat.jsonl", jsonl(rows)))
    assert ds.format == "openai"
    assert ds.examples[0].messages == [system("S"), user("q"), assistant("a")]
    assert ds.examples[1].messages == [system("Rules"), user("Part 1. 2"), assistant("ok")]


def test_sharegpt_conversations_with_system(tmp_path):
    row = {
        "system": "You are kind.",
        "conversations": [
            {"from": "human", "value": "hi"},
            {"from": "gpt", "value": "hello"},
            {"from": "human", "value": "bye"},
            {"from": "gpt", "value": "bye!"},
        ],
    }
    ds = load_dataset(write(tmp_path, "s.json", [row]))
    assert ds.format == "sharegpt"
    assert ds.examples[0].messages == [
        system("You are kind."),
        user("hi"),
        assistant("hello"),
        user("bye"),
        assistant("bye!"),
    ]


TOOL_ROW = {
    "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Paris"}}'},
        {"from": "observation", "value": '{"temp": 21}'},
        {"from": "gpt", "value": "21 degrees."},
    ],
    "tools": '[{"name": "weather", "description": "current weather", "parameters": {}}]',
}


def test_sharegpt_tool_turns_become_tool_messages_when_the_template_has_a_tool_role(tmp_path):
    ds = load_dataset(write(tmp_path, "t.json", [TOOL_ROW]), tool_roles=True)
    assert ds.examples[0].messages == [
        user("Weather in Paris?"),
        assistant('{"name": "weather", "arguments": {"city": "Paris"}}'),
        {"role": "tool", "content": '{"temp": 21}'},
        assistant("21 degrees."),
    ]
    assert ds.examples[0].tools == [{"name": "weather", "description": "current weather", "parameters": {}}]


def test_sharegpt_tool_turns_are_skipped_with_a_reason_without_a_tool_role(tmp_path):
    plain = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hey"}]}
    ds = load_dataset(write(tmp_path, "t.json", [TOOL_ROW, plain]), tool_roles=False)
    assert [ex.row for ex in ds.examples] == [2]
    assert [(s.row, s.kind) for s in ds.skipped] == [(1, "tool turns unsupported")]
    assert "no tool role (turn 2)" in ds.skipped[0].reason


def test_prompt_completion_strings_and_message_lists(tmp_path):
    rows = [
        {"prompt": "Capital of France?", "completion": "Paris."},
        {"prompt": [user("2+2?")], "completion": [assistant("4")], "system": "Math."},
    ]
    ds = load_dataset(write(tmp_path, "pc.jsonl", jsonl(rows)))
    assert ds.format == "prompt_completion"
    assert ds.examples[0].messages == [user("Capital of France?"), assistant("Paris.")]
    assert ds.examples[1].messages == [system("Math."), user("2+2?"), assistant("4")]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("qa.csv", 'Question,Answer\n"What is 2+2?",4\n"Say ""hi""","hi, there"\n'),
        ("qa.tsv", 'Question\tAnswer\nWhat is 2+2?\t4\nSay "hi"\thi, there\n'),
    ],
)
def test_csv_and_tsv_question_answer_columns_are_detected(tmp_path, name, text):
    ds = load_dataset(write(tmp_path, name, text))
    assert ds.format == "columns"
    assert ds.columns == {"prompt": "Question", "response": "Answer", "system": None}
    assert [ex.messages for ex in ds.examples] == [
        [user("What is 2+2?"), assistant("4")],
        [user('Say "hi"'), assistant("hi, there")],
    ]


def test_explicit_column_mapping_for_any_two_text_columns(tmp_path):
    text = "ticket,reply,persona,id\nMy order is late,Sorry! It ships today.,Support bot,1\n"
    ds = load_dataset(
        write(tmp_path, "t.csv", text),
        "columns",
        {"prompt": "ticket", "response": "reply", "system": "persona"},
    )
    assert ds.examples[0].messages == [
        system("Support bot"),
        user("My order is late"),
        assistant("Sorry! It ships today."),
    ]


def test_explicit_format_overrides_detection(tmp_path):
    rows = [{"instruction": "Translate", "input": "chat", "output": "cat", "response": "ignored"}]
    path = write(tmp_path, "a.json", rows)
    assert load_dataset(path).examples[0].messages == [user("Translate\nchat"), assistant("cat")]
    forced = load_dataset(path, "columns", {"prompt": "input", "response": "output"})
    assert forced.format == "columns"
    assert forced.examples[0].messages == [user("chat"), assistant("cat")]


def test_parquet_with_nested_conversations(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    conversations = [[{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]]
    pq.write_table(pa.table({"conversations": conversations}), tmp_path / "d.parquet")
    ds = load_dataset(tmp_path / "d.parquet")
    assert ds.format == "sharegpt"
    assert ds.examples[0].messages == [user("hi"), assistant("hello")]


def test_jsonl_saved_as_json_is_read_line_by_line(tmp_path):
    ds = load_dataset(write(tmp_path, "lines.json", jsonl([{"prompt": "a", "completion": "b"}] * 2)))
    assert len(ds.examples) == 2


# --- bad rows: reported, not fatal ----------------------------------------------------------------------------

GOOD = {"instruction": "q", "output": "a"}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"instruction": "q"}, "missing field 'output'"),
        ({"instruction": "q", "output": 42}, "field 'output' must be a string, got a number"),
        ({"instruction": ["q"], "output": "a"}, "field 'instruction' must be a string, got a list"),
        ({"instruction": "q", "output": "   "}, r"empty or whitespace-only answer \(turn 2\)"),
        ({"instruction": "", "output": "a"}, "empty user message"),
        ({"instruction": "q", "output": "a", "history": ["q0"]}, "history' must be a list of"),
        ("just text", "row is a string, expected an object"),
    ],
)
def test_bad_alpaca_rows_are_skipped_with_row_and_reason(tmp_path, bad, reason):
    ds = load_dataset(write(tmp_path, "a.json", [GOOD, bad, GOOD]), "alpaca")
    assert [ex.row for ex in ds.examples] == [1, 3]
    assert len(ds.skipped) == 1 and ds.skipped[0].row == 2
    assert re.search(reason, ds.skipped[0].reason)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"messages": [user("q")]}, "must end with an assistant answer"),
        ({"messages": [assistant("a")]}, "must start with a user message"),
        ({"messages": [user("q"), system("s"), assistant("a")]}, "system message at turn 2"),
        ({"messages": [{"role": "robot", "content": "x"}]}, r"messages\[1\] must have a role among"),
        (
            {"messages": [user("q"), {"role": "assistant", "content": 7}]},
            r"messages\[2\].content must be a string",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "only text parts are supported",
        ),
        ({"messages": "hello"}, "field 'messages' must be a list, got a string"),
        ({"messages": [user("q"), {"role": "tool", "content": "r"}, assistant("a")]}, "no tool role"),
    ],
)
def test_bad_openai_rows_are_skipped_with_row_and_reason(tmp_path, bad, reason):
    good = {"messages": [user("q"), assistant("a")]}
    ds = load_dataset(write(tmp_path, "m.jsonl", jsonl([good, bad])))
    assert [ex.row for ex in ds.examples] == [1]
    assert [s.row for s in ds.skipped] == [2]
    assert re.search(reason, ds.skipped[0].reason)


def test_bad_jsonl_line_and_short_csv_record_are_skipped_not_fatal(tmp_path):
    lines = '{"prompt": "a", "completion": "b"}\n{"prompt": "a", \n\n{"prompt": "c", "completion": "d"}\n'
    ds = load_dataset(write(tmp_path, "d.jsonl", lines))
    assert [ex.row for ex in ds.examples] == [1, 4]  # JSONL rows are line numbers
    assert ds.skipped[0].row == 2 and ds.skipped[0].reason.startswith("line is not valid JSON")
    csv_ds = load_dataset(write(tmp_path, "d.csv", "question,answer\nq1,a1\nq2\nq3,a3\n"))
    assert [ex.row for ex in csv_ds.examples] == [1, 3]
    assert csv_ds.skipped[0].reason == "has 1 fields, the header has 2"


# --- bad files: one clear ValueError --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.json", b"", r"empty\.json is empty \(0 bytes\)"),
        ("blank.jsonl", b"  \n\n", r"blank\.jsonl is empty: it holds only whitespace"),
        ("none.json", "[]", r"none\.json holds no rows"),
        ("header.csv", "question,answer\n", r"header\.csv holds no rows"),
        ("prose.jsonl", "Hello, this is not JSON\nnor this\n", r"prose\.jsonl: all 2 rows are invalid; most common reason \(2 rows\): line is not valid JSON"),
        ("prose.json", "Hello, this is not JSON", r"prose\.json is not valid JSON: Expecting value at line 1"),
        ("broken.json", '[{"instruction": "a",', r"broken\.json is not valid JSON: .* at line 1, column"),
        ("notes.txt", "question? answer.", r"notes\.txt: unknown file type '\.txt'"),
        ("number.json", "42", r"number\.json: expected a JSON array of rows or an object of arrays, got a number"),
        ("shape.json", {"rows": "abc"}, r"shape\.json: .* but key 'rows' holds a string"),
        ("ragged.json", {"a": [1, 2], "b": [1]}, r"ragged\.json: .*equal length, got lengths"),
        ("scalars.json", [1, 2, 3], r"scalars\.json: expected rows that are objects with fields, but row 1 is a number"),
        ("latin1.csv", "question,answer\ncaf\xe9,ok\n".encode("latin-1"), r"latin1\.csv is not valid UTF-8 text: byte 0xe9 at line 2"),
        ("fields.json", [{"title": "x", "body": "y"}], r"fields\.json: cannot tell the format from its fields \['title', 'body'\]"),
        ("junk.parquet", b"PAR1 not really", r"junk\.parquet is not a readable Parquet file"),
    ],
)  # fmt: skip
def test_unreadable_files_raise_one_clear_error(tmp_path, name, content, message):
    with pytest.raises(ValueError, match=message):
        load_dataset(write(tmp_path, name, content))


def test_all_rows_invalid_names_the_most_common_reason(tmp_path):
    rows = [
        {"instruction": "q"},
        {"instruction": "q", "output": 1},
        {"instruction": "q"},
        {"instruction": "q"},
    ]
    with pytest.raises(
        ValueError, match=r"a\.json: all 4 rows are invalid as alpaca; most common reason \(3 rows\): "
        r"missing field 'output' \(first at row 1\)"
    ):  # fmt: skip
        load_dataset(write(tmp_path, "a.json", rows))


def test_forced_format_that_does_not_match_fails_naming_the_missing_field(tmp_path):
    with pytest.raises(ValueError, match=r"most common reason .*missing field 'conversations'"):
        load_dataset(write(tmp_path, "a.json", [GOOD]), "sharegpt")


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = write(tmp_path, "big.json", [GOOD] * 100)
    with pytest.raises(ValueError, match=r"big\.json is 3\.\d KB, over the 1\.0 KB limit"):
        load_dataset(path, max_bytes=1024)
    assert len(load_dataset(path, max_bytes=10_000).examples) == 100


@pytest.mark.parametrize(
    ("fmt", "columns", "message"),
    [
        ("markdown", None, "fmt must be one of auto, alpaca"),
        ("columns", None, "fmt='columns' needs columns="),
        ("alpaca", {"prompt": "q", "response": "a"}, "columns only applies to fmt='columns'"),
        ("columns", {"prompt": "q"}, r"columns\['response'\] must name a column"),
        (
            "columns",
            {"prompt": "q", "response": "a", "label": "x"},
            r"columns keys must be among .*\['label'\]",
        ),
        (
            "columns",
            {"prompt": "question", "response": "reply"},
            r"q\.csv: column 'reply' .* not found; its columns",
        ),
    ],
)
def test_bad_format_options_are_refused(tmp_path, fmt, columns, message):
    path = write(tmp_path, "q.csv", "question,answer\nq,a\n")
    with pytest.raises(ValueError, match=message):
        load_dataset(path, fmt, columns)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"dataset file .*nope\.json does not exist"):
        load_dataset(tmp_path / "nope.json")


# --- real files: ../shared/data/llamafactory ------------------------------------------------------------------


def test_real_alpaca_demo(shared_data):
    ds = load_dataset(shared_data / "llamafactory" / "alpaca_en_demo.json")
    assert (ds.format, ds.rows_read, len(ds.examples), ds.skipped) == ("alpaca", 999, 999, [])
    first = ds.examples[0].messages
    assert first[0] == user("Describe a process of making crepes.")
    assert first[1]["role"] == "assistant" and first[1]["content"].startswith("Making crepes is an easy")
    with_input = next(ex for ex in ds.examples if "\n" in ex.messages[0]["content"])
    assert len(with_input.messages) == 2  # instruction and input joined into one user turn


def test_real_identity_with_placeholders_filled(shared_data):
    ds = load_dataset(shared_data / "llamafactory" / "identity.json")
    assert (ds.format, len(ds.examples)) == ("alpaca", 91)
    assert find_placeholders(ds.examples) == {"name": 77, "author": 60}
    filled = fill_placeholders(ds.examples, {"name": "Orbit", "author": "Acme Labs"})
    assert filled[0].messages == [
        user("hi"),
        assistant("Hello! I am Orbit, an AI assistant developed by Acme Labs. How can I assist you today?"),
    ]
    assert find_placeholders(filled) == {}
    assert "{{name}}" in ds.examples[0].messages[1]["content"]  # the input is not modified


def test_real_glaive_toolcall_with_and_without_tool_roles(shared_data):
    path = shared_data / "llamafactory" / "glaive_toolcall_en_demo.json"
    plain = load_dataset(path, tool_roles=False)
    assert (plain.format, plain.rows_read, len(plain.examples), len(plain.skipped)) == (
        "sharegpt",
        300,
        147,
        153,
    )
    assert {s.kind for s in plain.skipped} == {"tool turns unsupported"}
    assert plain.examples[0].row == 2
    assert plain.examples[0].messages[0] == user('Write a definition of "photoshop".')

    tools = load_dataset(path, tool_roles=True)
    assert len(tools.examples) == 300 and tools.skipped == []
    first = tools.examples[0].messages
    assert [m["role"] for m in first] == ["user", "assistant", "user", "assistant", "tool", "assistant", "user", "assistant"]  # fmt: skip
    assert first[3]["content"].startswith('{"name": "search_recipes"')
    assert first[4]["content"].startswith('{"recipes": [{"name": "Chicken and Bell Pepper Stir Fry"')
    assert tools.examples[0].tools[0]["name"] == "search_recipes"


def test_real_v1_sft_demo_content_parts(shared_data):
    ds = load_dataset(shared_data / "llamafactory" / "v1_sft_demo.jsonl")
    assert (ds.format, ds.rows_read, len(ds.examples)) == ("openai", 500, 500)
    assert ds.examples[10].messages == [
        user("Who built you?"),
        assistant("I am an AI assistant built by {{author}}."),
    ]
    assert ds.examples[10].row == 11


# --- helpers --------------------------------------------------------------------------------------------------


def test_fill_placeholders_keeps_unknown_keys_and_accepts_spaces():
    ex = Example([user("{{ name }} and {{other}}"), assistant("{{name}}!")], row=1)
    (filled,) = fill_placeholders([ex], {"name": "Orbit"})
    assert filled.messages == [user("Orbit and {{other}}"), assistant("Orbit!")]


def _examples(n):
    return [Example([user(f"q{i}"), assistant(f"a{i}")], row=i + 1) for i in range(n)]


@pytest.mark.parametrize(
    ("n", "fraction", "sizes"), [(100, 0.1, (90, 10)), (10, 0.01, (9, 1)), (1, 0.5, (1, 0)), (5, 0.0, (5, 0))]
)
def test_split_sizes(n, fraction, sizes):
    train, held_out = split_examples(_examples(n), fraction, seed=0)
    assert (len(train), len(held_out)) == sizes
    assert {e.row for e in train}.isdisjoint(e.row for e in held_out)


def test_split_is_deterministic_per_seed():
    examples = _examples(50)
    rows = lambda seed: [e.row for e in split_examples(examples, 0.2, seed)[1]]  # noqa: E731
    assert rows(1) == rows(1)
    assert rows(1) != rows(2)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5, "0.1", True])
def test_split_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="eval_fraction must be a number in"):
        split_examples(_examples(3), fraction, seed=0)


def test_tool_roles_supported_by_the_embedded_model(tokenizer):
    assert tool_roles_supported(tokenizer) is True


@pytest.mark.parametrize(
    "template",
    [
        "{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tools') }}{% endif %}"
        "{{ m['content'] }}{% endfor %}",
        "{% for m in messages %}{% if m['role'] in ['user', 'assistant'] %}{{ m['content'] }}{% endif %}{% endfor %}",
    ],
    ids=["raises", "drops"],
)
def test_tool_roles_not_supported_when_the_template_raises_or_drops_them(tokenizer, template):
    other = copy.deepcopy(tokenizer)
    other.chat_template = template
    assert tool_roles_supported(other) is False
