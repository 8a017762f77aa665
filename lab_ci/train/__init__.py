"""lab-ci train stage."""
