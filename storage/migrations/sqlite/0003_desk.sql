-- 0003_desk: (placeholder, filled in by its area)
SELECT 1;
