-- What a campaign asked its operator (a plate to move into or out of a manual incubator, a reader
-- export to upload) and the answer, keyed by a prompt id the campaign derives from its plan, so that
-- a restarted campaign finds the answers it already has instead of asking again.
CREATE TABLE operator_prompts (
    campaign_id TEXT NOT NULL REFERENCES campaigns (campaign_id),
    prompt_id   TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('confirm', 'upload')),
    text        TEXT NOT NULL,
    -- What an answer must hold (for an upload: the plate, its wells and readouts).
    spec        TEXT NOT NULL CHECK (json_valid(spec)),
    asked_at    TEXT NOT NULL,
    answer      TEXT CHECK (answer IS NULL OR json_valid(answer)),
    answered_by TEXT,
    answered_at TEXT,
    PRIMARY KEY (campaign_id, prompt_id),
    CHECK ((answer IS NULL) = (answered_at IS NULL))
) STRICT;
