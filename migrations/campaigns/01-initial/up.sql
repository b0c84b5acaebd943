-- Campaigns, their iterations, experiments and links, and the stage outputs the legacy platform lacked.
CREATE TABLE imports (
    import_id   INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (kind, sha256)
) STRICT;

CREATE TABLE campaigns (
    campaign_id     TEXT PRIMARY KEY,
    campaign_type   TEXT NOT NULL,
    goal            TEXT,
    start_date      TEXT,
    end_date        TEXT,
    status          TEXT NOT NULL DEFAULT 'running',
    config          TEXT,
    results_summary TEXT,
    created_at      TEXT,
    position        INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE campaign_iterations (
    iteration_id     INTEGER PRIMARY KEY,
    campaign_id      TEXT NOT NULL REFERENCES campaigns (campaign_id),
    iteration_number INTEGER NOT NULL,
    timestamp        TEXT,
    proposals        TEXT,
    results          TEXT,
    model_state      TEXT,
    metrics          TEXT,
    UNIQUE (campaign_id, iteration_number)
) STRICT;

CREATE TABLE experiments (
    experiment_id   TEXT PRIMARY KEY,
    campaign_id     TEXT REFERENCES campaigns (campaign_id),
    experiment_type TEXT NOT NULL,
    cell_line_id    TEXT,
    start_date      TEXT,
    end_date        TEXT,
    status          TEXT NOT NULL DEFAULT 'pending',
    metadata        TEXT,
    created_at      TEXT NOT NULL
) STRICT;

CREATE TABLE campaign_experiments (
    campaign_id      TEXT NOT NULL REFERENCES campaigns (campaign_id),
    experiment_id    TEXT NOT NULL REFERENCES experiments (experiment_id),
    iteration_number INTEGER,
    added_at         TEXT NOT NULL,
    PRIMARY KEY (campaign_id, experiment_id)
) STRICT;

CREATE TABLE stage_outputs (
    output_id    INTEGER PRIMARY KEY,
    campaign_id  TEXT NOT NULL REFERENCES campaigns (campaign_id),
    cell_line_id TEXT NOT NULL,
    stage        TEXT NOT NULL,
    key          TEXT NOT NULL,
    value        TEXT NOT NULL CHECK (json_valid(value)),
    created_at   TEXT NOT NULL,
    UNIQUE (campaign_id, cell_line_id, key)
) STRICT;
