-- The campaign runner's journal: every liquid operation is recorded before it is sent and its outcome
-- after, so that a crashed campaign resumes without repeating an operation that may have happened.
CREATE TABLE journal (
    entry_id    INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (campaign_id),
    iteration   INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    op          TEXT NOT NULL CHECK (json_valid(op)),
    state       TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'unknown', 'reconciled')),
    detail      TEXT,
    sent_at     TEXT NOT NULL,
    done_at     TEXT,
    UNIQUE (campaign_id, iteration, seq)
) STRICT;
