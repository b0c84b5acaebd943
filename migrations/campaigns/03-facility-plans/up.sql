-- Facility plans saved by `cellos facility plan --save`: the input as given and the plan as computed, so
-- that the dashboard (and a later reader) sees exactly what the planner reported.
CREATE TABLE facility_plans (
    plan_id    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    input      TEXT NOT NULL CHECK (json_valid(input)),
    plan       TEXT NOT NULL CHECK (json_valid(plan)),
    created_at TEXT NOT NULL
) STRICT;
