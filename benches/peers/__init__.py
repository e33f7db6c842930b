"""What the suites measure emlpress against: the code a user would write or pick instead
(plain numpy, a plain highspy loop, HiGHS' MIP per neuron, OMLT, auto_LiRPA). The suites import
it as ``peers.<module>``: pytest puts benches/ on sys.path for its conftest.py."""
