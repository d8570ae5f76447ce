"""What an installed blink looks like, read from the catalog as stable text.

* ``table_definitions``: every table of schema blink as one readable block (columns,
  constraints, indexes, triggers, comments, grants): ``db/schema.sql`` is this text for a
  fresh install, so the current definition of any table is in one file.
* ``sql_surface``: every blink function's signature, volatility, strictness, parallel
  safety, security, configuration and privileges, and every table's and view's grants:
  ``tests/expected/sql_surface.txt`` pins it.

The installing role is written ``<owner>``, so the text does not depend on who installed.
"""

from __future__ import annotations

from typing import Any

TABLES = """
SELECT c.oid, c.oid::regclass::text, obj_description(c.oid, 'pg_class')
FROM pg_class c WHERE c.relnamespace = 'blink'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname
"""

COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
         || CASE WHEN a.attcollation <> t.typcollation
                 THEN ' COLLATE ' || quote_ident(c.collname) ELSE '' END,
       a.attnotnull, a.attidentity,
       pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation c ON c.oid = a.attcollation
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""

CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = %s ORDER BY contype <> 'p', conname
"""

INDEXES = """
SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE i.indrelid = %s AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1
"""

TRIGGERS = """
SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = %s AND NOT tgisinternal
ORDER BY tgname
"""

# Privileges as (grantee, privilege) pairs; NULL ACLs are the defaults (shown as such).
RELATION_GRANTS = """
SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type
FROM pg_class c, aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE c.oid = %s AND a.grantee <> c.relowner ORDER BY 1, 2
"""

COLUMN_GRANTS = """
SELECT coalesce(r.rolname, 'PUBLIC'), a.privilege_type,
       string_agg(att.attname, ', ' ORDER BY att.attnum)
FROM pg_attribute att, aclexplode(att.attacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
WHERE att.attrelid = %s AND att.attacl IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2
"""

FUNCTIONS = r"""
SELECT p.oid::regprocedure::text,
       pg_get_function_result(p.oid),
       CASE p.provolatile WHEN 'i' THEN 'IMMUTABLE' WHEN 's' THEN 'STABLE' ELSE 'VOLATILE' END,
       CASE WHEN p.proisstrict THEN 'STRICT' ELSE 'CALLED ON NULL INPUT' END,
       CASE p.proparallel WHEN 's' THEN 'PARALLEL SAFE' WHEN 'r' THEN 'PARALLEL RESTRICTED'
            ELSE 'PARALLEL UNSAFE' END,
       CASE WHEN p.prosecdef THEN 'SECURITY DEFINER' ELSE 'SECURITY INVOKER' END,
       l.lanname,
       coalesce(array_to_string(p.proconfig, ' '), ''),
       (SELECT coalesce(string_agg(coalesce(r.rolname, 'PUBLIC') || ':' || a.privilege_type,
                                   ' ' ORDER BY 1), '-')
        FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
        LEFT JOIN pg_roles r ON r.oid = a.grantee WHERE a.grantee <> p.proowner),
       obj_description(p.oid, 'pg_proc') IS NOT NULL
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE (p.pronamespace = 'blink'::regnamespace
       OR p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'blink\_%')
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1
"""

RELATIONS = """
SELECT c.oid, c.oid::regclass::text, CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END
FROM pg_class c WHERE c.relnamespace = 'blink'::regnamespace AND c.relkind IN ('r', 'v')
ORDER BY 2
"""


def _grants(conn: Any, oid: int, name: str) -> list[str]:
    lines = []
    by_grantee: dict[str, list[str]] = {}
    for grantee, privilege in conn.execute(RELATION_GRANTS, [oid]).fetchall():
        by_grantee.setdefault(grantee, []).append(privilege)
    for grantee, privileges in by_grantee.items():
        lines.append(f"GRANT {', '.join(privileges)} ON {name} TO {grantee};")
    for grantee, privilege, columns in conn.execute(COLUMN_GRANTS, [oid]).fetchall():
        lines.append(f"GRANT {privilege} ({columns}) ON {name} TO {grantee};")
    return lines


def table_definitions(conn: Any) -> str:
    """Every table of schema blink, one block each, as SQL a person reads."""
    blocks = []
    for oid, name, comment in conn.execute(TABLES).fetchall():
        lines = [f"-- {comment}" if comment else f"-- {name}", f"CREATE TABLE {name} ("]
        items = []
        for col, type_, notnull, identity, default, col_comment in conn.execute(
                COLUMNS, [oid]).fetchall():
            text = f"    {col} {type_}"
            if identity:
                text += " GENERATED " + ("ALWAYS" if identity == "a" else "BY DEFAULT")
                text += " AS IDENTITY"
            elif default is not None:
                text += f" DEFAULT {default}"
            if notnull:
                text += " NOT NULL"
            items.append((text, col_comment))
        for con, definition in conn.execute(CONSTRAINTS, [oid]).fetchall():
            items.append((f"    CONSTRAINT {con} {definition}", None))
        for i, (text, note) in enumerate(items):
            comma = "," if i < len(items) - 1 else ""
            lines.append(text + comma + (f"  -- {note}" if note else ""))
        lines.append(");")
        lines += [f"{sql};" for (sql,) in conn.execute(INDEXES, [oid]).fetchall()]
        lines += [f"{sql};" for (sql,) in conn.execute(TRIGGERS, [oid]).fetchall()]
        lines += _grants(conn, oid, name)
        blocks.append("\n".join(lines))
    header = ("-- blink's tables as a fresh `alembic upgrade head` leaves them: generated by "
              "`make schema`\n-- from the catalog, checked by tests/migrations. Do not edit: "
              "tables change through\n-- db/incremental/; functions and views are in "
              "db/idempotent/.\n\n")
    return header + "\n\n".join(blocks) + "\n"


def sql_surface(conn: Any) -> str:
    """One line per blink function and per table or view: how each is declared and granted."""
    lines = []
    for row in conn.execute(FUNCTIONS).fetchall():
        signature, result, volatility, strict, parallel, security, language, config, acl, \
            documented = row
        lines.append(f"function {signature} -> {result} | {language} {volatility} {strict} "
                     f"{parallel} {security} | config: {config or '-'} | execute: {acl}"
                     f"{'' if documented else ' | NO COMMENT'}")
    for oid, name, kind in conn.execute(RELATIONS).fetchall():
        grants = _grants(conn, oid, name)
        lines.append(f"{kind} {name} | " + (" ".join(
            g.removeprefix("GRANT ").removesuffix(";").replace(f" ON {name}", "")
            for g in grants) or "no grants"))
    return "\n".join(lines) + "\n"
