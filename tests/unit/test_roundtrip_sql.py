"""Named placeholders become libpq's numbered ones (dispatcher/roundtrip.py)."""

from dispatcher.roundtrip import numbered


def test_named_placeholders_are_numbered_in_first_use_order() -> None:
    assert numbered("SELECT %(b)s::int, '5%%', %(a)s, %(b)s") == ("SELECT $1::int, '5%', $2, $1", ["b", "a"])


def test_the_daemons_statement_has_every_parameter_once() -> None:
    from dispatcher.queries import load_queries

    sql, names = numbered(load_queries("queue")["task_complete_and_claim"])
    assert names == ["ids", "attempts", "worker", "kinds", "limit", "lease", "after_priority",
                     "after_run_after", "after_id"]
    assert "%(" not in sql and "$9" in sql
