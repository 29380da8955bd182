"""A comparable picture of the nightshift schema, read from the system catalogs.

Two databases built differently (migrated from empty, or created from the declared schema) must give
the same picture. Everything is keyed by name and rendered by Postgres itself (pg_get_*def), so the
comparison sees what a DBA would see in psql.
"""

from __future__ import annotations

import psycopg

SCHEMA_QUERIES = {
    "columns": """
        SELECT table_name || '.' || column_name,
               concat_ws(' ', data_type, udt_name, is_nullable, column_default, is_identity,
                         identity_generation, ordinal_position::text)
        FROM information_schema.columns WHERE table_schema = 'nightshift'
    """,
    "constraints": """
        SELECT conrelid::regclass::text || ' ' || conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'nightshift'::regnamespace
    """,
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'nightshift'
    """,
    "enums": """
        SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = 'nightshift'::regnamespace GROUP BY t.typname
    """,
    "functions": """
        SELECT p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid))
        FROM pg_proc p WHERE p.pronamespace = 'nightshift'::regnamespace
    """,
    "views": """
        SELECT c.relname, md5(pg_get_viewdef(c.oid))
        FROM pg_class c WHERE c.relnamespace = 'nightshift'::regnamespace AND c.relkind IN ('v', 'm')
    """,
    "triggers": """
        SELECT tgrelid::regclass::text || ' ' || tgname, pg_get_triggerdef(oid)
        FROM pg_trigger WHERE NOT tgisinternal
          AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'nightshift'::regnamespace)
    """,
    "table_options": """
        SELECT relname, coalesce(array_to_string(reloptions, ','), '')
        FROM pg_class WHERE relnamespace = 'nightshift'::regnamespace AND relkind = 'r'
    """,
    "comments": """
        SELECT c.relname || '.' || coalesce(a.attname, ''), d.description
        FROM pg_description d
        JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
        WHERE c.relnamespace = 'nightshift'::regnamespace
    """,
    # who owns what: SECURITY DEFINER functions run with their owner's rights
    "owners": """
        SELECT 'schema nightshift', pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'nightshift'
        UNION ALL
        SELECT 'relation ' || relname, pg_get_userbyid(relowner)
        FROM pg_class WHERE relnamespace = 'nightshift'::regnamespace
        UNION ALL
        SELECT 'function ' || oid::regprocedure::text, pg_get_userbyid(proowner)
        FROM pg_proc WHERE pronamespace = 'nightshift'::regnamespace
        UNION ALL
        SELECT 'type ' || typname, pg_get_userbyid(typowner)
        FROM pg_type WHERE typnamespace = 'nightshift'::regnamespace
    """,
}

# Alembic's bookkeeping exists only in a migrated database.
IGNORED = ("alembic_version",)


def snapshot(url: str) -> dict[str, dict[str, str]]:
    picture: dict[str, dict[str, str]] = {}
    with psycopg.connect(url) as conn:
        for section, query in SCHEMA_QUERIES.items():
            rows = conn.execute(query).fetchall()
            picture[section] = {
                key: value for key, value in rows if not any(ignored in key for ignored in IGNORED)
            }
    return picture


def differences(left: dict[str, dict[str, str]], right: dict[str, dict[str, str]]) -> list[str]:
    out = []
    for section in SCHEMA_QUERIES:
        a, b = left.get(section, {}), right.get(section, {})
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                out.append(f"{section} {key}: {a.get(key)!r} != {b.get(key)!r}")
    return out
