-- Measurements: the 12 phase-0 columns, plus where each row came from.
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
    source_file       TEXT,
    source_row        INTEGER,
    import_id         INTEGER REFERENCES imports (import_id),
    campaign_id       TEXT,
    created_at        TEXT NOT NULL
) STRICT;

CREATE INDEX measurements_line_compound ON measurements (cell_line, compound);
CREATE INDEX measurements_plate ON measurements (plate_id);
