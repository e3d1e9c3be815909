"""Benchmarks: omoi against a baseline measured in the same run, one module per `omoi bench` verb."""
