-- A lentivirus titration's wells are measurements too: the virus each received (µL of the stock) and
-- the BFP-positive fraction read (compound 'lentivirus', no dose in µM).
ALTER TABLE measurements ADD COLUMN virus_ul REAL CHECK (virus_ul >= 0);
ALTER TABLE measurements ADD COLUMN bfp_fraction REAL CHECK (bfp_fraction BETWEEN 0 AND 1);
