"""Cluster DNS: service and pod names answered on every node (see node.py)."""
