-- Schema version 7 to 8: The sections of an alert its coordinators wrote, kept over every
-- later version.
ALTER TABLE alerts ADD COLUMN wording TEXT NOT NULL DEFAULT '{}';
