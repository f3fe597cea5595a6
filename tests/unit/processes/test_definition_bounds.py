"""Hostile definitions are refused in one line naming the limit: size, YAML depth, steps, CEL shape, cost."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from crmflow.aggregates.limits import (
    MAX_COMPREHENSION_ITEMS,
    MAX_DEFINITION_BYTES,
    MAX_DEFINITION_STEPS,
    MAX_EXPRESSION_CHARS,
    MAX_STRING_CHARS,
)
from crmflow.processes import expressions
from crmflow.processes.expressions import ExpressionError, Scope, compile_expression
from crmflow.processes.loader import DocumentsInvalid, load_files, parse_documents
from crmflow.processes.validation import expression_sources, validate

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
# An inbound type: its data has no registered schema, so event.data.items is not checked against one.
HEAD = "apiVersion: crmflow/v1\nkind: Process\nname: p\nversion: 1\ntrigger: {on: [ItemsPosted]}\nsteps:\n"


def problems(text: str) -> list[str]:
    try:
        issues = validate(parse_documents(text, "p.yaml"))
    except DocumentsInvalid as invalid:
        issues = invalid.issues
    return [str(issue) for issue in issues]


def with_set(expression: str, steps: int = 1) -> str:
    body = "".join(f"  - id: s{i}\n    set: {{x: '{expression}'}}\n" for i in range(steps))
    return HEAD + body


def refusal(source: str) -> str:
    with pytest.raises(ExpressionError) as refused:
        compile_expression(source)
    return str(refused.value)


@pytest.fixture
def runtime_never_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime's compiler crashes the process on what is refused here: it must not even be called."""

    def crash(source: str) -> None:
        raise AssertionError("cel.compile was called")

    monkeypatch.setattr(expressions.cel, "compile", crash)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(HEAD + "#" * MAX_DEFINITION_BYTES)
    with pytest.raises(DocumentsInvalid) as refused:
        load_files([big])
    (issue,) = refused.value.issues
    size = len(HEAD) + MAX_DEFINITION_BYTES
    assert str(issue) == (f"{big}:1: refused before parsing: the file is {size:,} bytes; "
                          "the limit is definition_bytes (262,144 bytes)")  # fmt: skip


def test_a_fifty_megabyte_body_is_refused_at_once_naming_its_size() -> None:
    started = time.perf_counter()
    (line,) = problems(HEAD + "  - {id: a, wait: PT1H}\n" * 2_100_000)
    # 24 bytes a step, 2,100,000 steps, and the head: 50,400,000 + 92 bytes.
    assert line == ("p.yaml:1: refused before parsing: the YAML text is 50,400,092 bytes; "
                    "the limit is definition_bytes (262,144 bytes)")  # fmt: skip
    assert time.perf_counter() - started < 5, "refused by its size, not after parsing it"


def test_yaml_nested_five_thousand_deep_is_one_line_naming_the_depth_limit_not_a_recursion_error() -> None:
    flow = HEAD + "  - " + "[" * 5000 + "]" * 5000 + "\n"
    block = HEAD + "".join("  " * i + "k:\n" for i in range(1, 200)) + "  " * 200 + "k: 1\n"
    for text in (flow, block):
        (line,) = problems(text)
        assert line.endswith("nested 33 deep here; the limit is yaml_depth (32 levels)"), line


def test_billion_laughs_yaml_is_still_refused_quickly() -> None:
    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
    )
    started = time.perf_counter()
    found = problems(HEAD + "  - {id: a, wait: PT1H}\n" + laughs)
    assert found and all("unknown field" in line for line in found)
    assert time.perf_counter() - started < 5


def test_a_definition_with_one_step_over_the_limit_is_refused_before_its_steps_are_read() -> None:
    text = HEAD + "  - {id: a, wait: PT1H}\n" * (MAX_DEFINITION_STEPS + 1)
    assert problems(text) == [
        "p.yaml:7: steps: the document has 201 steps; the limit is definition_steps (200 steps)"
    ]
    assert (
        problems(HEAD + "".join(f"  - {{id: s{i}, wait: PT1H}}\n" for i in range(MAX_DEFINITION_STEPS))) == []
    )


def test_the_sixty_thousand_term_sum_that_crashed_the_runtime_is_refused_by_its_length(
    runtime_never_compiles: None,
) -> None:
    sum_of_ones = " + ".join(["1"] * 60_000)  # 60,000 ones and 59,999 " + ": 239,997 characters
    assert refusal(sum_of_ones) == (
        f"{sum_of_ones[:80]!r}... (239,997 characters) is refused: the expression has 239,997 characters; "
        "the limit is expression_chars (4,096 characters)"
    )


def test_the_longest_sum_allowed_compiles_and_evaluates() -> None:
    longest = "+".join(["1"] * 2048)  # 2,048 ones and 2,047 pluses: 4,095 characters
    assert len(longest) <= MAX_EXPRESSION_CHARS
    assert compile_expression(longest).evaluate(Scope({}, NOW, "acme")) == 2048


def test_brackets_nested_past_the_limit_are_refused_before_the_runtime_sees_them(
    runtime_never_compiles: None,
) -> None:
    assert refusal("(" * 33 + "1" + ")" * 33).endswith(
        "the expression nests brackets 33 deep; the limit is expression_nesting (32 levels)"
    )


def test_brackets_inside_a_string_are_text_not_nesting() -> None:
    assert compile_expression('"' + "(" * 40 + '" != "x"').evaluate(Scope({}, NOW, "acme")) is True


def test_a_chain_of_conditionals_counts_as_nesting(runtime_never_compiles: None) -> None:
    assert refusal("true ? 1 : " * 100 + "1").endswith(
        "the expression nests brackets and ?: too deep; the limit is expression_nesting (32 levels)"
    )


def test_map_nested_three_deep_is_refused_naming_the_comprehension_limit(
    runtime_never_compiles: None,
) -> None:
    assert refusal("[1].map(a, [1].map(b, [1].map(c, a + b + c)))").endswith(
        "the expression nests .map/.filter/.all/.exists 3 deep; the limit is comprehension_nesting (2 levels)"
    )


def test_the_twelve_deep_map_that_wedged_the_worker_is_refused_at_validation() -> None:
    twelve = "[1,2,3,4,5]"
    for variable in "abcdefghijkl":
        twelve = f"[1,2,3,4,5].map({variable}, {twelve})" if variable != "a" else "[1,2,3,4,5].map(a, a)"
    (line,) = problems(with_set(twelve))
    assert "nests .map/.filter/.all/.exists 12 deep; the limit is comprehension_nesting (2 levels)" in line


def test_a_map_over_event_data_costs_a_thousand_items_copied_as_the_result_grows() -> None:
    # event.data.items: 3 units; body x * 2: 3, plus 1 per turn: 4; n = 1,000 turns;
    # map copies its growing result: 1,000² / 2 = 500,000. 3 + 1,000 × 4 + 500,000 = 504,003.
    assert MAX_COMPREHENSION_ITEMS == 1_000
    assert compile_expression("event.data.items.map(x, x * 2)").cost == 504_003
    # .exists neither copies nor grows; its body x * 2 > 3 is 5 nodes, plus 1 per turn: 3 + 1,000 × 6 = 6,003.
    assert compile_expression("event.data.items.exists(x, x * 2 > 3)").cost == 6_003


def test_a_map_nested_in_a_map_over_event_data_is_refused_with_its_estimated_cost() -> None:
    # Inner map: 504,003 (above), so the outer body is 504,004: 3 + 1,000 × 504,004 + 500,000 = 504,504,003.
    assert refusal("event.data.items.map(x, event.data.items.map(y, x * y))").endswith(
        "is refused: its estimated worst-case cost is 504,504,003 units; "
        "the limit is expression_cost (1,000,000 cost units) (docs/process-language.md, Limits)"
    )


def test_a_map_over_a_small_literal_list_is_cheap() -> None:
    # [1,2,3]: 1 + 3 = 4; body a + 1: 1 + 3 = 4 per turn; copies 3² // 2 = 4. 4 + 3 × 4 + 4 = 20.
    assert compile_expression("[1, 2, 3].map(a, a + 1)").cost == 20


def test_a_string_function_costs_a_tenth_of_a_unit_per_character_of_the_longest_string() -> None:
    # event.data.s: 3; the call with its argument: 2; 65,536 // 10 = 6,553 for the string: 3 + 2 + 6,553.
    assert compile_expression('event.data.s.contains("x")').cost == 3 + 2 + MAX_STRING_CHARS // 10


def test_a_definition_whose_expressions_add_up_past_the_budget_is_refused_with_the_total() -> None:
    # 20 set steps of 504,003 each, and the default key event.subject (2): 10,080,062 > 10,000,000.
    (line,) = problems(with_set("event.data.items.map(x, x * 2)", steps=20))
    assert line == (
        "p.yaml:7: steps: the definition is refused: its expressions' estimated worst-case costs add up "
        "to 10,080,062 units; the limit is definition_cost (10,000,000 cost units)"
    )
    assert problems(with_set("event.data.items.map(x, x * 2)", steps=19)) == []


def test_an_iterating_expression_refuses_a_list_longer_than_its_cost_assumed() -> None:
    doubled = compile_expression("event.data.items.map(x, x * 2)")
    assert doubled.evaluate(Scope({"data": {"items": [1] * 1_000}}, NOW, "acme")) == [2] * 1_000
    with pytest.raises(ExpressionError) as refused:
        doubled.evaluate(Scope({"data": {"items": [1] * 1_001}}, NOW, "acme"))
    assert str(refused.value).endswith(
        "iterates, and event.data.items holds a list of 1,001 items; "
        "the limit is comprehension_items (1,000 items)"
    )


def test_every_shipped_expression_is_far_within_the_budget() -> None:
    definitions = Path(__file__).parents[3] / "processes" / "definitions"
    documents = [d for d in load_files(sorted(definitions.glob("*.yaml"))) if d.kind == "Process"]
    costs = [compile_expression(s).cost for d in documents for s in expression_sources(d.model)]  # type: ignore[arg-type]
    assert costs and max(costs) < 100


def test_yaml_that_safe_loading_refuses_is_one_line_not_a_traceback() -> None:
    assert problems("apiVersion: !!python/object:os.system x\nkind: Process\n") == [
        "p.yaml:1: not valid YAML here: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object:os.system'"
    ]
    assert problems("a: &x 1\n<<: *x\n") == [
        "p.yaml:1: not valid YAML here: expected a mapping or list of mappings for merging, but found scalar"
    ]


def test_an_integer_of_five_thousand_digits_is_an_issue_on_its_line_not_a_traceback() -> None:
    # PyYAML turns the digits into an int, and Python refuses to convert a string of over 4,300 digits.
    found = problems(HEAD + "  - id: s0\n    set: {x: " + "9" * 5_000 + "}\n")
    assert len(found) == 1
    assert "integer_range" in found[0] and "Traceback" not in found[0]
