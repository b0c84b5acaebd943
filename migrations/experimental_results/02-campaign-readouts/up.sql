-- Campaign measurements carry all three readouts of a well and their iteration.
ALTER TABLE measurements ADD COLUMN segmentation REAL;
ALTER TABLE measurements ADD COLUMN iteration INTEGER;
CREATE UNIQUE INDEX measurements_campaign_well ON measurements (campaign_id, iteration, plate_id, well_id) WHERE campaign_id IS NOT NULL;
