"""The controller manager's controllers: each compares desired with observed state and
acts to close the difference, through the API only."""
