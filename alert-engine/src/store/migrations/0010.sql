-- Schema version 9 to 10: exercises and tests (issue 16 §2). A report's drill ('' when
-- real, 'exercise', 'test'), and its signal's: a drill's reports make signals of their own,
-- and the signal's drill is its alerts' (CAP <status>).
ALTER TABLE reports ADD COLUMN drill TEXT NOT NULL DEFAULT '';
ALTER TABLE signals ADD COLUMN drill TEXT NOT NULL DEFAULT '';
