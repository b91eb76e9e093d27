"""Simulated nodes (`timonel agent --simulate N`): nodes that register, heartbeat and play
their pods' lifecycles from a table of stages, without running containers."""
