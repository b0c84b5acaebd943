"""The legacy platform's path for the same job, timed: pandas `read_csv` of the measurements CSV, then
`to_sql` into a fresh SQLite file, as cell_OS's migration script did. Prints
`legacy_rows_per_s=<n> legacy_seconds=<s>`.

Run by `import_bench --legacy-python PYTHON` (a Python with pandas), or by hand:
`python3 legacy_import.py CSV DB`.
"""

import sqlite3
import sys
import time

import pandas as pd


def main() -> None:
    csv, db = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    frame = pd.read_csv(csv)
    with sqlite3.connect(db) as con:
        frame.to_sql("measurements", con, if_exists="replace", index=False)
    seconds = time.perf_counter() - start
    print(f"legacy_rows_per_s={len(frame) / seconds:.0f} legacy_seconds={seconds:.2f}")


if __name__ == "__main__":
    main()
