"""lab-ci sdg stage."""
