-- 0004 repairs versions that are not integers. Before UpdateObject refused to increment
-- the largest version (2^63-1), SQLite turned the overflowing version + 1 into a REAL,
-- and reading such a row failed, which broke the listing of its whole store. Such a row
-- is set to the largest version, where every conditional write of it is refused cleanly.
-- Any other version is left alone; a database without such rows is not changed.
UPDATE vss_db
SET version = 9223372036854775807
WHERE typeof(version) <> 'integer';
