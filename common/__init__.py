"""What every app needs and nothing above it: environment reading, the one Redis seam, money units,
operator-command helpers. The bottom layer: it imports no app of ours (the import contracts check it)."""
