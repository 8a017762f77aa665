"""lab-ci bot stage."""
