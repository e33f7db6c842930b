"""End-to-end pipelines that orchestrate the core steps and write run folders."""
