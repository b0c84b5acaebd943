-- Who a campaign ran on: each instrument's identity, recorded when the campaign first reached it, so
-- that a resume on another instrument (a reused serial port, another twin) is refused. A row per
-- instrument and identity; a twin restarted from the journal adds a row (`note` says why).
CREATE TABLE campaign_instruments (
    entry_id    INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns (campaign_id),
    role        TEXT NOT NULL CHECK (role IN ('star', 'reader')),
    identity    TEXT NOT NULL CHECK (json_valid(identity)),
    port        TEXT,
    recorded_at TEXT NOT NULL,
    note        TEXT
) STRICT;

CREATE INDEX campaign_instruments_by_campaign ON campaign_instruments (campaign_id, role, entry_id);

-- Why a campaign stopped, when its status is 'failed'.
ALTER TABLE campaigns ADD COLUMN failure TEXT;
