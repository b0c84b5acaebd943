-- Measurements: the 12 phase-0 columns, plus where each row came from: its import (whose record holds
-- the source file and the time) and its row in the source. Rows written by a campaign instead carry
-- their campaign and their own time.
CREATE TABLE imports (
    import_id   INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (kind, sha256)
) STRICT;

CREATE TABLE measurements (
    id                INTEGER PRIMARY KEY,
    plate_id          TEXT NOT NULL,
    well_id           TEXT NOT NULL,
    cell_line         TEXT NOT NULL,
    compound          TEXT,
    dose_uM           REAL CHECK (dose_uM >= 0),
    time_h            REAL,
    raw_signal        REAL,
    is_control        INTEGER CHECK (is_control IN (0, 1)),
    date              TEXT,
    incubator_id      TEXT,
    liquid_handler_id TEXT,
    viability_norm    REAL,
    import_id         INTEGER REFERENCES imports (import_id),
    source_row        INTEGER,
    campaign_id       TEXT,
    created_at        TEXT,
    CHECK (import_id IS NOT NULL OR campaign_id IS NOT NULL)
) STRICT;

-- Covering the dose-response query (`cellos results fit`): answered from the index alone.
CREATE INDEX measurements_line_compound ON measurements (cell_line, compound, dose_uM, viability_norm);
-- (no plate index: plate queries are rare, and each index slows every import)
