-- 0006_figures: (placeholder, filled in by its area)
SELECT 1;
