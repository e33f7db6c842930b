"""Datasets: Goldstein-Price test function, transprecision computing, epidemics."""
