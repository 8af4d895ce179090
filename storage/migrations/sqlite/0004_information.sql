-- 0004_information: (placeholder, filled in by its area)
SELECT 1;
