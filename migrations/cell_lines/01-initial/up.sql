-- Cell lines, their characteristics and protocols, the vial inventory and its usage history.
CREATE TABLE imports (
    import_id   INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    source      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (kind, sha256)
) STRICT;

CREATE TABLE cell_lines (
    cell_line_id     TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    cell_type        TEXT NOT NULL,
    growth_media     TEXT NOT NULL,
    wash_buffer      TEXT,
    detach_reagent   TEXT,
    -- NULL where the source did not say (kept apart from an explicit value, so exports lose nothing).
    coating_required INTEGER CHECK (coating_required IN (0, 1)),
    coating_reagent  TEXT,
    cost_tier        TEXT,
    -- The source's `coating` block as JSON ('null' when the source said null; NULL when absent).
    coating          TEXT,
    -- Any other fields of the source entry, as a JSON object, so nothing is lost.
    extra            TEXT,
    position         INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;

CREATE TABLE cell_line_characteristics (
    char_id        INTEGER PRIMARY KEY,
    cell_line_id   TEXT NOT NULL REFERENCES cell_lines (cell_line_id),
    characteristic TEXT NOT NULL,
    value          TEXT NOT NULL,
    -- 'text' for a string value; 'json' when the source value was a number, boolean or structure.
    value_kind     TEXT NOT NULL DEFAULT 'text' CHECK (value_kind IN ('text', 'json')),
    notes          TEXT,
    position       INTEGER NOT NULL,
    UNIQUE (cell_line_id, characteristic)
) STRICT;

CREATE TABLE cell_line_protocols (
    protocol_id   INTEGER PRIMARY KEY,
    cell_line_id  TEXT NOT NULL REFERENCES cell_lines (cell_line_id),
    protocol_type TEXT NOT NULL,
    vessel_type   TEXT NOT NULL,
    parameters    TEXT NOT NULL,
    is_reference  INTEGER NOT NULL DEFAULT 0 CHECK (is_reference IN (0, 1)),
    position      INTEGER NOT NULL,
    UNIQUE (cell_line_id, protocol_type, vessel_type)
) STRICT;

CREATE TABLE cell_line_inventory (
    inventory_id   INTEGER PRIMARY KEY,
    cell_line_id   TEXT NOT NULL REFERENCES cell_lines (cell_line_id),
    vial_id        TEXT NOT NULL UNIQUE,
    passage_number INTEGER,
    freeze_date    TEXT,
    location       TEXT,
    status         TEXT NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'used', 'discarded')),
    notes          TEXT,
    created_at     TEXT NOT NULL
) STRICT;

CREATE TABLE cell_line_usage (
    usage_id     INTEGER PRIMARY KEY,
    cell_line_id TEXT NOT NULL REFERENCES cell_lines (cell_line_id),
    vial_id      TEXT REFERENCES cell_line_inventory (vial_id),
    execution_id TEXT,
    usage_date   TEXT NOT NULL,
    purpose      TEXT,
    notes        TEXT
) STRICT;
