"""lab-ci teacher stage."""
