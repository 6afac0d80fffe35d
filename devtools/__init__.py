"""Developer tools: local servers for tests, the demo and the benchmarks. Not shipped."""
