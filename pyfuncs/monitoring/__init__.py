"""Monitoring: drift, estimated and realised performance, and the policy that acts on them."""
