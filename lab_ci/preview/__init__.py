"""lab-ci preview stage."""
