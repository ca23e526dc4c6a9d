"""Orchestration between the API and the layers below: scheduling servers onto hosts and claiming their devices."""
