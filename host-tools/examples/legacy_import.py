"""The legacy platform's path for the same job, timed: pandas `read_csv` of the measurements CSV, then
`to_sql` into a fresh SQLite file, as cell_OS's migration script did. Prints
`legacy_rows_per_s=<n> legacy_seconds=<s>`.

cell_OS's migration (`scripts/migrations/migrate_experiments.py`) reads the CSV with `pd.read_csv`, opens
`ExperimentalRepository` (`src/cell_os/database/repositories/experimental.py`), whose constructor runs
`CREATE TABLE IF NOT EXISTS measurements` (AUTOINCREMENT id, `created_at` default) and the four
`CREATE INDEX IF NOT EXISTS`, and then `add_measurements` appends the frame's columns with
`to_sql("measurements", conn, if_exists="append", index=False)` on a plain `sqlite3.connect`. `--schema`
is that path.

With `--schema LEGACY_DB`, the fresh file first gets the tables and indexes of a database the legacy
platform wrote (its shipped `experimental_results.db`: `measurements` with an AUTOINCREMENT id, a
`created_at` default and four indexes, on cell line, compound, plate and date), and `to_sql` appends
into them: the database the legacy platform itself worked with. Its migration wrote the rows with the
indexes already there: in the shipped file the four indexes' root pages (4-7) come straight after the
table's, before any row's page, and their leaves lie between the table's. Without it, `to_sql`
replaces the table with a bare one of pandas' own (no id, no default, no index), which no legacy code
read.

Run by `import_bench --legacy-python PYTHON` (a Python with pandas), or by hand:
`python3 legacy_import.py CSV DB [--schema LEGACY_DB]`.
"""

import sqlite3
import sys
import time

import pandas as pd


def main() -> None:
    csv, db = sys.argv[1], sys.argv[2]
    schema = sys.argv[sys.argv.index("--schema") + 1] if "--schema" in sys.argv else None
    if schema is not None:
        source = sqlite3.connect(f"file:{schema}?mode=ro", uri=True)
        # Tables before indexes; SQLite makes its own `sqlite_sequence`.
        ddl = [
            sql
            for (sql,) in source.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
                "ORDER BY type = 'index', rowid"
            )
        ]
        source.close()
        with sqlite3.connect(db) as con:
            for sql in ddl:
                con.execute(sql)
    start = time.perf_counter()
    frame = pd.read_csv(csv)
    with sqlite3.connect(db) as con:
        if schema is None:
            frame.to_sql("measurements", con, if_exists="replace", index=False)
        else:
            frame.to_sql("measurements", con, if_exists="append", index=False)
    seconds = time.perf_counter() - start
    print(f"legacy_rows_per_s={len(frame) / seconds:.0f} legacy_seconds={seconds:.2f}")


if __name__ == "__main__":
    main()
