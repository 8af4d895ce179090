-- 0005_oversight: (placeholder, filled in by its area)
SELECT 1;
