"""The benchmark behind `make bench`: Beacon against a direct call loop."""
