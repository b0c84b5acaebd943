-- What the dose-response fit and the summary read, kept as the rows change, so that neither grows with
-- the measurements: per (line, compound, dose) the number of rows and their viability's count, sum and
-- sum of squares (a fit to these is the fit to every row: cellos_core::fit::Replicates), and per plate
-- its number of rows. Triggers keep them for every writer (imports, campaigns, sync). A missing
-- compound is stored as '' and a missing dose as -1 (doses are never negative).
CREATE TABLE dose_stats (
    cell_line       TEXT NOT NULL,
    compound        TEXT NOT NULL,
    dose_uM         REAL NOT NULL,
    rows            INTEGER NOT NULL,
    viability_n     INTEGER NOT NULL,
    viability_sum   REAL NOT NULL,
    viability_sumsq REAL NOT NULL,
    PRIMARY KEY (cell_line, compound, dose_uM)
) STRICT, WITHOUT ROWID;

CREATE TABLE plate_stats (
    plate_id TEXT PRIMARY KEY,
    rows     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO dose_stats
SELECT cell_line, ifnull(compound, ''), ifnull(dose_uM, -1.0), count(*), count(viability_norm),
       ifnull(sum(viability_norm), 0.0), ifnull(sum(viability_norm * viability_norm), 0.0)
FROM measurements GROUP BY cell_line, ifnull(compound, ''), ifnull(dose_uM, -1.0);

INSERT INTO plate_stats SELECT plate_id, count(*) FROM measurements GROUP BY plate_id;

CREATE TRIGGER measurements_stats_insert AFTER INSERT ON measurements BEGIN
    INSERT INTO dose_stats VALUES (
        NEW.cell_line, ifnull(NEW.compound, ''), ifnull(NEW.dose_uM, -1.0), 1, NEW.viability_norm IS NOT NULL,
        ifnull(NEW.viability_norm, 0.0), ifnull(NEW.viability_norm * NEW.viability_norm, 0.0))
    ON CONFLICT DO UPDATE SET rows = rows + 1, viability_n = viability_n + excluded.viability_n,
        viability_sum = viability_sum + excluded.viability_sum, viability_sumsq = viability_sumsq + excluded.viability_sumsq;
    INSERT INTO plate_stats VALUES (NEW.plate_id, 1) ON CONFLICT DO UPDATE SET rows = rows + 1;
END;

CREATE TRIGGER measurements_stats_delete AFTER DELETE ON measurements BEGIN
    UPDATE dose_stats SET rows = rows - 1, viability_n = viability_n - (OLD.viability_norm IS NOT NULL),
        viability_sum = viability_sum - ifnull(OLD.viability_norm, 0.0),
        viability_sumsq = viability_sumsq - ifnull(OLD.viability_norm * OLD.viability_norm, 0.0)
    WHERE cell_line = OLD.cell_line AND compound = ifnull(OLD.compound, '') AND dose_uM = ifnull(OLD.dose_uM, -1.0);
    DELETE FROM dose_stats
    WHERE cell_line = OLD.cell_line AND compound = ifnull(OLD.compound, '') AND dose_uM = ifnull(OLD.dose_uM, -1.0) AND rows = 0;
    UPDATE plate_stats SET rows = rows - 1 WHERE plate_id = OLD.plate_id;
    DELETE FROM plate_stats WHERE plate_id = OLD.plate_id AND rows = 0;
END;

CREATE TRIGGER measurements_stats_update AFTER UPDATE OF plate_id, cell_line, compound, dose_uM, viability_norm ON measurements BEGIN
    UPDATE dose_stats SET rows = rows - 1, viability_n = viability_n - (OLD.viability_norm IS NOT NULL),
        viability_sum = viability_sum - ifnull(OLD.viability_norm, 0.0),
        viability_sumsq = viability_sumsq - ifnull(OLD.viability_norm * OLD.viability_norm, 0.0)
    WHERE cell_line = OLD.cell_line AND compound = ifnull(OLD.compound, '') AND dose_uM = ifnull(OLD.dose_uM, -1.0);
    DELETE FROM dose_stats
    WHERE cell_line = OLD.cell_line AND compound = ifnull(OLD.compound, '') AND dose_uM = ifnull(OLD.dose_uM, -1.0) AND rows = 0;
    UPDATE plate_stats SET rows = rows - 1 WHERE plate_id = OLD.plate_id;
    DELETE FROM plate_stats WHERE plate_id = OLD.plate_id AND rows = 0;
    INSERT INTO dose_stats VALUES (
        NEW.cell_line, ifnull(NEW.compound, ''), ifnull(NEW.dose_uM, -1.0), 1, NEW.viability_norm IS NOT NULL,
        ifnull(NEW.viability_norm, 0.0), ifnull(NEW.viability_norm * NEW.viability_norm, 0.0))
    ON CONFLICT DO UPDATE SET rows = rows + 1, viability_n = viability_n + excluded.viability_n,
        viability_sum = viability_sum + excluded.viability_sum, viability_sumsq = viability_sumsq + excluded.viability_sumsq;
    INSERT INTO plate_stats VALUES (NEW.plate_id, 1) ON CONFLICT DO UPDATE SET rows = rows + 1;
END;

-- The fit no longer reads the rows, and this index cost every import a random insertion per row.
DROP INDEX measurements_line_compound;
