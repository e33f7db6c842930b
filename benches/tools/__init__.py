"""The suites' helpers (the cached trained networks) and the scripts that turn results into
benches/README.md's tables. The suites import them as ``tools.<module>``: pytest puts benches/
on sys.path for its conftest.py."""
