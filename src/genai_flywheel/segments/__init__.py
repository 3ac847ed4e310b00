"""Segments: the monitor's metrics broken down by a dimension of the traffic (a tag, a metadata key, the
model, the cluster of the user's question), and the drift of that mix against a reference window."""
