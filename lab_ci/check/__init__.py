"""lab-ci check stage."""
