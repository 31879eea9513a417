"""Small helpers shared by several components."""
