-- Simulation parameters: versioned cell-line parameters, compounds and their sensitivities, the tBHP
-- readout sets (which the legacy schema dropped), defaults, simulation runs.
CREATE TABLE imports (
    import_id   INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (kind, sha256)
) STRICT;

CREATE TABLE cell_line_params (
    param_id           INTEGER PRIMARY KEY,
    cell_line_id       TEXT NOT NULL,
    version            INTEGER NOT NULL CHECK (version >= 1),
    doubling_time_h    REAL NOT NULL CHECK (doubling_time_h > 0),
    max_confluence     REAL NOT NULL CHECK (max_confluence > 0),
    max_passage        INTEGER NOT NULL CHECK (max_passage >= 0),
    senescence_rate    REAL NOT NULL,
    seeding_efficiency REAL NOT NULL,
    passage_stress     REAL NOT NULL,
    cell_count_cv      REAL NOT NULL,
    viability_cv       REAL NOT NULL,
    biological_cv      REAL NOT NULL,
    coating_required   INTEGER CHECK (coating_required IN (0, 1)),
    valid_from         TEXT NOT NULL,
    valid_to           TEXT,
    notes              TEXT,
    import_id          INTEGER REFERENCES imports (import_id),
    UNIQUE (cell_line_id, version)
) STRICT;
-- At most one current version per line.
CREATE UNIQUE INDEX cell_line_params_current ON cell_line_params (cell_line_id) WHERE valid_to IS NULL;

CREATE TABLE compounds (
    compound_name TEXT PRIMARY KEY,
    hill_slope    REAL NOT NULL CHECK (hill_slope > 0),
    description   TEXT,
    position      INTEGER NOT NULL
) STRICT;

CREATE TABLE compound_sensitivity (
    sensitivity_id           INTEGER PRIMARY KEY,
    compound_name            TEXT NOT NULL REFERENCES compounds (compound_name),
    cell_line_id             TEXT NOT NULL,
    ic50_um                  REAL NOT NULL CHECK (ic50_um > 0),
    hill_slope               REAL NOT NULL CHECK (hill_slope > 0),
    confidence_interval_low  REAL,
    confidence_interval_high REAL,
    source                   TEXT NOT NULL DEFAULT 'estimated',
    version                  INTEGER NOT NULL DEFAULT 1,
    valid_from               TEXT NOT NULL,
    valid_to                 TEXT,
    notes                    TEXT,
    position                 INTEGER NOT NULL,
    UNIQUE (compound_name, cell_line_id, version)
) STRICT;

CREATE TABLE cellrox_params (
    compound_name TEXT NOT NULL REFERENCES compounds (compound_name),
    cell_line_id  TEXT NOT NULL,
    ec50_um       REAL NOT NULL CHECK (ec50_um > 0),
    max_fold      REAL NOT NULL,
    baseline_au   REAL NOT NULL,
    hill_slope    REAL NOT NULL,
    version       INTEGER NOT NULL DEFAULT 1,
    valid_from    TEXT NOT NULL,
    valid_to      TEXT,
    position      INTEGER NOT NULL,
    PRIMARY KEY (compound_name, cell_line_id, version)
) STRICT;

CREATE TABLE segmentation_params (
    compound_name       TEXT NOT NULL REFERENCES compounds (compound_name),
    cell_line_id        TEXT NOT NULL,
    degradation_ic50_um REAL NOT NULL CHECK (degradation_ic50_um > 0),
    min_quality         REAL NOT NULL,
    hill_slope          REAL NOT NULL,
    version             INTEGER NOT NULL DEFAULT 1,
    valid_from          TEXT NOT NULL,
    valid_to            TEXT,
    position            INTEGER NOT NULL,
    PRIMARY KEY (compound_name, cell_line_id, version)
) STRICT;

CREATE TABLE default_params (
    param_name  TEXT PRIMARY KEY,
    param_value REAL NOT NULL,
    description TEXT,
    position    INTEGER NOT NULL
) STRICT;

CREATE TABLE simulation_runs (
    run_id        INTEGER PRIMARY KEY,
    campaign_id   TEXT NOT NULL,
    cell_line_id  TEXT NOT NULL,
    param_version INTEGER NOT NULL REFERENCES cell_line_params (param_id),
    run_date      TEXT NOT NULL,
    results_path  TEXT,
    metadata      TEXT
) STRICT;
