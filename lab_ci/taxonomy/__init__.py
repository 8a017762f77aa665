"""lab-ci taxonomy stage."""
