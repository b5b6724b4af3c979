"""A simulated Xporter OneRoster v1.1 server and the synthetic school it serves."""
