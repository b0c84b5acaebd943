-- The gateway service's runs and their events, kept so that a restarted service resumes what was
-- running (and keeps what was paused paused) and an event stream reconnecting with Last-Event-ID gets
-- what it missed, across restarts. An event is written before anyone can see it.
CREATE TABLE service_runs (
    run_id     TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    config     TEXT NOT NULL CHECK (json_valid(config)),
    state      TEXT NOT NULL CHECK (state IN ('queued', 'running', 'paused', 'stopping', 'stopped', 'failed', 'succeeded')),
    error      TEXT,
    outputs    TEXT CHECK (outputs IS NULL OR json_valid(outputs)),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE service_events (
    run_id   TEXT NOT NULL REFERENCES service_runs (run_id),
    event_id INTEGER NOT NULL CHECK (event_id >= 1),
    event    TEXT NOT NULL CHECK (json_valid(event)),
    PRIMARY KEY (run_id, event_id)
) STRICT;
