-- autodurable schema 12 (SQLite): nothing in the database. Values too large for their
-- rows are files in the folder next to it (state.db-values/, named by the SHA-256
-- digest of their encoded text); this version number marks files that may refer to
-- them, so that an older autodurable refuses them instead of failing on a reference.

SELECT 1;
