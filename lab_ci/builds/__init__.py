"""lab-ci build stage."""
