"""Text format: escaping, values, HELP/TYPE once, gzip members that concatenate."""

import gzip
import math

from prometheus_client.parser import text_string_to_metric_families

from tmi_db_exporter.core.exposition import Block, Family, format_value


def render(families: list[Family]) -> str:
    return Block(families).text.decode()

HOSTILE = ['quote"d', "back\\slash", "new\nline", "tab\tand space", "ünïcødé ☃", "x" * 300, ""]


def test_hostile_label_values_round_trip_through_the_parser() -> None:
    family = Family("pg_test_value", "Help with \\ and\nnewline.", "gauge")
    for i, value in enumerate(HOSTILE):
        family.add(i, (("relname", value), ("schemaname", "public")))
    parsed = list(text_string_to_metric_families(render([family])))
    assert len(parsed) == 1
    assert parsed[0].documentation == "Help with \\ and\nnewline."
    got = {s.labels["relname"]: s.value for s in parsed[0].samples}
    assert got == {v: float(i) for i, v in enumerate(HOSTILE)}


def test_help_and_type_once_per_family_even_without_samples() -> None:
    text = render([Family("a_total", "A.", "counter"), Family("b", "B.")])
    assert text.count("# TYPE a_total counter") == 1
    assert text.count("# HELP b B.") == 1
    assert [f.name for f in text_string_to_metric_families(text)] == ["a", "b"]


def test_same_label_set_keeps_one_series() -> None:
    family = Family("g", "G.")
    family.add(1, (("a", "x"),))
    family.add(2, (("a", "x"),))
    assert render([family]).count('g{a="x"}') == 1
    assert 'g{a="x"} 2\n' in render([family])


def test_value_formatting() -> None:
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(1e20) == "1e+20"
    assert format_value(math.nan) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(-2.0) == "-2"


def test_gzip_members_concatenate_to_the_full_text() -> None:
    blocks = []
    for n in range(3):
        family = Family(f"m{n}", "M.")
        family.add(n, (("i", str(n)),))
        blocks.append(Block([family]))
    joined = b"".join(b.gzipped() for b in blocks)
    assert gzip.decompress(joined) == b"".join(b.text for b in blocks)
    assert blocks[0].gzipped() is blocks[0].gzipped()  # compressed once, then reused
    assert [b.series for b in blocks] == [1, 1, 1]
    assert [b.size for b in blocks] == [len(b.text) for b in blocks]


def test_a_large_result_is_rendered_exactly_and_kept_small() -> None:
    """Thousands of tables: label sets shared across families are escaped once and rendered
    right for every family; what is kept is the gzip member, several times smaller."""
    rows = [(("relname", f't"{i}\\'), ("schemaname", "public")) for i in range(5000)]
    families = [Family(f"pg_t_{n}", "T.") for n in range(4)]
    for i, labels in enumerate(rows):
        for n, family in enumerate(families):
            family.add(i * 10 + n, labels)
    block = Block(families)
    parsed = {f.name: f for f in text_string_to_metric_families(block.text.decode())}
    assert block.series == 20000 == sum(len(f.samples) for f in parsed.values())
    assert parsed["pg_t_3"].samples[4999].labels["relname"] == 't"4999\\'
    assert parsed["pg_t_3"].samples[4999].value == 49993
    assert len(block.gzipped()) * 4 < block.size
    chunks = list(block.text_chunks(size=4096))
    assert max(len(c) for c in chunks) <= 4096 and b"".join(chunks) == block.text
