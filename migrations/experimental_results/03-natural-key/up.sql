-- A measurement imported from a source (not written by a campaign) is known by its plate, well and
-- time: a second source of the same rows (the legacy database after the CSV, or the CSV again with
-- another line ending) adds nothing. Earlier versions added such rows twice; here the later copies of a
-- row are removed when every value agrees with the first copy's (reals to within 4 ε of the larger of
-- their magnitudes and 1, as the importers compare them: the legacy database's reals went through
-- pandas' parser and differ from the CSV's in the last digits). Their imports stay recorded. Copies
-- that disagree are left, and the unique index below then refuses the migration: such a database needs
-- a person to decide which copy is right.
DELETE FROM measurements WHERE id IN (
    SELECT later.id
    FROM (
        SELECT plate_id, well_id, time_h, min(id) AS first FROM measurements
        WHERE campaign_id IS NULL GROUP BY plate_id, well_id, time_h HAVING count(*) > 1
    ) AS k
    JOIN measurements AS f ON f.id = k.first
    JOIN measurements AS later
      ON later.campaign_id IS NULL AND later.plate_id = k.plate_id AND later.well_id = k.well_id
     AND later.time_h IS k.time_h AND later.id > k.first
    WHERE 1
      AND later.cell_line IS f.cell_line
      AND later.compound IS f.compound
      AND later.is_control IS f.is_control
      AND later.date IS f.date
      AND later.incubator_id IS f.incubator_id
      AND later.liquid_handler_id IS f.liquid_handler_id
      AND (later.dose_uM IS f.dose_uM OR abs(later.dose_uM - f.dose_uM) <= 8.881784197001252e-16 * max(abs(later.dose_uM), abs(f.dose_uM), 1.0))
      AND (later.raw_signal IS f.raw_signal OR abs(later.raw_signal - f.raw_signal) <= 8.881784197001252e-16 * max(abs(later.raw_signal), abs(f.raw_signal), 1.0))
      AND (later.viability_norm IS f.viability_norm OR abs(later.viability_norm - f.viability_norm) <= 8.881784197001252e-16 * max(abs(later.viability_norm), abs(f.viability_norm), 1.0))
);
CREATE UNIQUE INDEX measurements_natural ON measurements (plate_id, well_id, coalesce(time_h, -1.0))
WHERE campaign_id IS NULL;
