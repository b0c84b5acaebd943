-- A campaign's measurements in the order its pages and downloads list them (iteration, then the order
-- they were written): the rows of a campaign come off this index already sorted, with no sort of
-- every row at each request. Partial, like the campaign's unique key: imported rows (no campaign)
-- cost it nothing.
CREATE INDEX measurements_campaign_order ON measurements (campaign_id, iteration) WHERE campaign_id IS NOT NULL;
