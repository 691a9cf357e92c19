-- has_media NULL where the source does not report media (twcs files, S&P 500 id files): stored as
-- false, those posts made media_share 0 -- "no media" -- where nothing was observed. Loads keep NULL
-- from now on; the facts carry the posts' value.
update posts set has_media = null
where has_media is not null
  and ingest_run_id in (select run_id from ingest_runs where kind in ('twcs', 'sp500'));
update fact_org_posts f set has_media = null
from posts p
where p.platform = f.platform and p.post_id = f.post_id and p.has_media is null and f.has_media is not null;
