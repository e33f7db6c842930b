"""The C++ boundary: emlpress.kernels is the one module importing the extension, _core.pyi
describes the extension as built, and the kernels' results are read-only numpy views that
outlive the object they came from and hold what their docstrings say."""

import ast
import gc
from pathlib import Path

import highspy
import numpy as np
import pytest

import emlpress
from emlpress import Network, _core, bounds, kernels
from emlpress.bounds.relaxation import add_block

PACKAGE = Path(emlpress.__file__).parent
STUB = PACKAGE / "_core.pyi"


# --- _core.pyi against the built module -------------------------------------------------
def _split_top(text: str) -> list[str]:
    """`text` split at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur] if cur.strip() else parts


def _built_signature(fn) -> tuple[list[str], list[str]]:
    """(argument names, those with a default) from pybind11's signature line, the first
    line of the docstring: name(a: T, b: U = ...) -> R."""
    line = fn.__doc__.splitlines()[0]
    assert not line.startswith("Overloaded"), f"{fn.__qualname__} is overloaded"
    start = line.index("(") + 1
    depth, end = 1, start
    while depth:
        depth += line[end] in "([{"
        depth -= line[end] in ")]}"
        end += 1
    args = [a.strip() for a in _split_top(line[start:end - 1])]
    names = [a.split(":")[0].split("=")[0].strip() for a in args]
    return names, [n for n, a in zip(names, args) if " = " in a]


def _stub_signature(node: ast.FunctionDef) -> tuple[list[str], list[str]]:
    a = node.args
    names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
    positional = a.posonlyargs + a.args
    defaulted = [x.arg for x in positional[len(positional) - len(a.defaults):]]
    defaulted += [x.arg for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
    return names, defaulted


def _stub():
    """Top-level functions, classes (name -> {member: node}) and other names of the stub."""
    tree = ast.parse(STUB.read_text())
    funcs, classes, others = {}, {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            funcs[node.name] = node
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
        elif isinstance(node, ast.AnnAssign) and node.target.id != "__all__":
            others.add(node.target.id)
        elif isinstance(node, ast.Assign):
            others.update(t.id for t in node.targets if t.id != "__all__")
    return funcs, classes, others


def _public(names):
    return {n for n in names if not n.startswith("_")}


def test_stub_names_every_public_name_of_the_extension_and_nothing_else():
    funcs, classes, others = _stub()
    assert set(funcs) | set(classes) | others == _public(dir(_core))
    for name, members in classes.items():
        cls = getattr(_core, name)
        assert isinstance(cls, type), name
        # a constructor bound with py::init (classes without one only inherit type's slot)
        init = (getattr(vars(cls).get("__init__"), "__doc__", None) or "").startswith("__init__(")
        built = _public(vars(cls)) | ({"__init__"} if init else set())
        assert _public(members) | ({"__init__"} & set(members)) == built, name


def test_stub_signatures_match_the_extension():
    """Argument names, in order, and which take a default: every function and method."""
    funcs, classes, _ = _stub()
    checked = 0
    for name, node in funcs.items():
        assert _stub_signature(node) == _built_signature(getattr(_core, name)), name
        checked += 1
    for cname, members in classes.items():
        cls = getattr(_core, cname)
        for name, node in members.items():
            if any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list):
                assert isinstance(vars(cls)[name], property), f"{cname}.{name}"
                continue
            if name == "__repr__":
                continue
            assert _stub_signature(node) == _built_signature(getattr(cls, name)), f"{cname}.{name}"
            checked += 1
    assert checked >= 20


# --- who imports the extension ------------------------------------------------------------
def _imports_core(tree: ast.AST, module: str) -> list[int]:
    """Lines of `tree` (module `module`, dotted) importing emlpress._core."""
    package = module.rsplit(".", 1)[0]  # emlpress.bounds.__init__ and .x: emlpress.bounds
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(a.name == "emlpress._core" or a.name.startswith("emlpress._core.") for a in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base == "emlpress._core" or (base == "emlpress" and any(a.name == "_core" for a in node.names)):
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant) and node.value == "emlpress._core":
            lines.append(node.lineno)  # importlib.import_module("emlpress._core")
    return lines


def test_only_the_kernels_module_imports_the_extension():
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        lines = _imports_core(ast.parse(path.read_text()), ".".join(rel.parts))
        if lines:
            found[str(path.relative_to(PACKAGE))] = lines
    assert found == {"kernels.py": found.get("kernels.py")} and found["kernels.py"], found


def test_the_import_check_sees_every_form_of_import():
    forms = ["import emlpress._core", "import emlpress._core as c", "from emlpress import _core",
             "from emlpress import _options, _core", "from emlpress._core import crown",
             "from . import _core", "from .._core import Net",
             "importlib.import_module('emlpress._core')"]
    for src in forms:
        module = "emlpress.bounds.x" if src.startswith("from ..") else "emlpress.x"
        assert _imports_core(ast.parse(src), module), src
    for src in ("from emlpress import kernels", "from emlpress.bounds import _core_helpers",
                "x = net._core", "from . import _core", "from emlpress.kernels import crown"):
        module = "emlpress.bounds.x" if src == "from . import _core" else "emlpress.x"
        assert not _imports_core(ast.parse(src), module), src


def test_kernels_reexports_the_whole_extension():
    assert set(kernels.__all__) == _public(dir(_core))
    for name in kernels.__all__:
        assert getattr(kernels, name) is getattr(_core, name), name


# --- the result classes -------------------------------------------------------------------
def _net(seed=0, sizes=(3, 12, 10, 2)):
    rng = np.random.default_rng(seed)
    return Network([rng.normal(size=(o, i)) * np.sqrt(2 / i) for i, o in zip(sizes[:-1], sizes[1:])],
                   [rng.normal(size=o) * 0.2 for o in sizes[1:]])


def _readonly_view_of(arr, owner):
    """`arr` cannot be written and shares memory with (is kept alive by) `owner`."""
    with pytest.raises(ValueError, match="read-only"):
        arr[...] = 0
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return base is owner


def test_relaxation_results_are_read_only_views_that_outlive_their_object():
    net = _net()
    lo, hi = -np.ones(3), np.ones(3)
    b = bounds.crown(net, lo, hi)
    store = kernels.LpRelaxation(lo, hi)
    blk = store.add_layer(net._core, 0, b.lower[0], b.upper[0])
    assert isinstance(blk, kernels.LpBlock)
    for name in ("col_lower", "col_upper", "row_lower", "row_upper", "starts", "indices", "values", "cols"):
        assert _readonly_view_of(getattr(blk, name), blk), name
    assert blk.starts[0] == 0 and blk.starts[-1] == blk.indices.size == blk.values.size
    assert blk.cols.shape == (12,) and blk.starts.dtype == np.int32
    aff = store.pre_activation(net._core, 1)
    assert aff.A.shape == (10, aff.ref.size) and aff.c.shape == aff.err.shape == (10,)
    assert all(_readonly_view_of(getattr(aff, n), aff) for n in ("A", "c", "err", "ref"))
    assert repr(blk).startswith("LpBlock(") and repr(aff) == f"Affine(10 units over {aff.ref.size} columns)"
    # the layer's rows stay in the block after the store moves on, and after the block is gone
    copy = blk.values.copy()
    values = blk.values
    store.add_layer(net._core, 1, b.lower[1], b.upper[1])
    del blk, store
    gc.collect()
    np.testing.assert_array_equal(values, copy)
    # the starting basis: its status codes and multipliers sized as documented
    store = kernels.LpRelaxation(lo, hi)
    store.add_layer(net._core, 0, b.lower[0], b.upper[0])
    aff = store.pre_activation(net._core, 1)
    st = store.dual_feasible_basis(aff.ref, aff.A[0])
    assert st.col_status.shape == st.col_value.shape == (store.n_cols,)
    assert st.row_status.shape == st.row_dual.shape == (store.n_rows,)
    assert set(np.unique(st.col_status)) <= {0, 1, 2} and isinstance(st.objective, float)
    assert _readonly_view_of(st.row_dual, st)
    # its dual objective bounds min z_1[0] - c[0] over the box from below
    X = np.random.default_rng(1).uniform(lo, hi, (2000, 3))
    assert st.objective + aff.c[0] <= net.preactivations(X)[1][:, 0].min() + 1e-9


def test_an_lp_block_built_from_arrays_checks_its_shapes_and_goes_to_highs():
    # max x0 subject to x0 + x1 <= 0.5, x0 in [0, 2] integer, x1 in [-1, 1]: 1 (1.5 if continuous)
    blk = kernels.LpBlock(col_lower=[0.0, -1.0], col_upper=[2.0, 1.0], row_lower=[-np.inf],
                          row_upper=[0.5], starts=[0, 2], indices=[0, 1], values=[1.0, 1.0],
                          binary=[0])
    assert repr(blk) == "LpBlock(2 columns, 1 binary, 1 rows, 2 nonzeros)" and blk.cols.size == 0
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    add_block(h, blk)
    h.changeColsCost(2, np.array([0, 1], np.int32), np.array([-1.0, 0.0]))
    h.run()
    assert h.getInfo().objective_function_value == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="starts"):
        kernels.LpBlock(col_lower=[0.0], col_upper=[1.0], row_lower=[0.0], row_upper=[1.0],
                        starts=[0], indices=[], values=[])
    with pytest.raises(ValueError, match="col_lower and col_upper"):
        kernels.LpBlock(col_lower=[0.0], col_upper=[], row_lower=[], row_upper=[], starts=[0],
                        indices=[], values=[])
    with pytest.raises(ValueError, match="indices and values"):
        kernels.LpBlock(col_lower=[], col_upper=[], row_lower=[0.0], row_upper=[1.0],
                        starts=[0, 2], indices=[0], values=[1.0])


def test_bigm_block_is_an_lp_block_with_every_unit_placed():
    net = _net(1)
    lo, hi = -np.ones(3), np.ones(3)
    b = bounds.crown(net, lo, hi)
    enc = kernels.bigm_network(net._core, list(b.lower), list(b.upper), [0, 1, 2], 3)
    assert isinstance(enc, kernels.LpBlock)
    assert [c.size for c in enc.unit_cols] == [12, 10, 2]
    assert len(enc.binary_cols) == len(enc.pre_cols) == 2
    unstable = np.concatenate([b.unstable(l) for l in range(2)])
    bins = np.concatenate(enc.binary_cols)
    np.testing.assert_array_equal(bins >= 0, unstable)
    np.testing.assert_array_equal(np.sort(bins[bins >= 0]), np.sort(enc.binary))
    # every column numbered from first_col, once
    used = np.concatenate([np.concatenate(enc.unit_cols), bins, np.concatenate(enc.pre_cols)])
    used = np.sort(used[used >= 0])
    np.testing.assert_array_equal(used, 3 + np.arange(enc.col_lower.size))
    assert repr(enc).startswith("BigMBlock(3 layers, ")


def test_linear_bounds_hold_at_sampled_inputs():
    net = _net(2)
    lo, hi = -np.ones(3), np.array([1.0, 2.0, 0.5])
    b = bounds.crown(net, lo, hi)
    L = kernels.crown_linear(net._core, lo, hi, (list(b.lower[:1]), list(b.upper[:1])), 1, [0, 3, 7])
    assert L.AU.shape == L.AL.shape == (3, 3) and L.cU.shape == L.slack.shape == (3,)
    assert _readonly_view_of(L.AU, L)
    X = np.random.default_rng(0).uniform(lo, hi, (2000, 3))
    Z = net.preactivations(X)[1][:, [0, 3, 7]]
    assert np.all(Z <= X @ L.AU.T + L.cU + L.slack) and np.all(Z >= X @ L.AL.T + L.cL - L.slack)


def test_a_tiny_row_parallel_to_a_large_one_is_folded_into_it_not_the_reverse():
    """Rows taken in index order kept the 1e-35 row and made the 1e-7 one its multiple by
    3e27: the folded output cancelled terms of 1e20 and lost all its digits (hypothesis found
    it at 10x examples); largest first, the tiny row is the dependent one and the fold is exact
    to rounding."""
    W = np.array([[3e-35, 0.0, 0.0], [1e-7, 0.0, 0.0]])
    b = np.array([0.02, 5e-5])  # both stably active on [-1, 1]^3
    V, c = np.array([[1.0, -1e-3]]), np.zeros(1)
    lower, upper = b - np.abs(W).sum(1), b + np.abs(W).sum(1)
    f = kernels.fold_layer(W, b, V, c, lower, upper, np.ones(3), 1e-12)
    np.testing.assert_array_equal(f.kept, [1])
    X = np.random.default_rng(0).uniform(-1, 1, (1000, 3))
    full = np.maximum(X @ W.T + b, 0) @ V.T + c
    folded = np.maximum(X @ f.W.T + f.b, 0) @ f.V.T + f.c
    assert np.abs(full - folded).max() <= f.resid[0] <= 1e-13 * np.abs(full).max()


def test_layer_fold_reproduces_the_next_layer_within_its_residual():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(6, 3))
    W[4] = 2 * W[0] - W[1]  # dependent
    W[5] = 0.0              # zero weights
    b = np.array([20.0, 20.0, 20.0, -20.0, 30.0, 0.3])  # 0, 1, 2, 4 active; 3 inactive
    V, c = rng.normal(size=(2, 6)), rng.normal(size=2)
    box = np.abs(W).sum(1)
    lower, upper = b - box, b + box
    assert np.all(lower[[0, 1, 2, 4]] > 0) and upper[3] < 0
    f = kernels.fold_layer(W, b, V, c, lower, upper, np.ones(3), 1e-9)
    assert (f.n_inactive, f.n_zero, f.n_dependent) == (1, 1, 1)
    # rows 0, 1 and 4 span two dimensions: the largest two are kept (largest rows first)
    big = sorted([0, 1, 4], key=lambda i: -np.linalg.norm(W[i]))[:2]
    np.testing.assert_array_equal(f.kept, sorted(big + [2]))
    assert f.W.shape == (3, 3) and f.V.shape == (2, 3) and f.resid.shape == (2,)
    assert _readonly_view_of(f.V, f) and _readonly_view_of(f.kept, f)
    X = rng.uniform(-1, 1, (1000, 3))
    full = np.maximum(X @ W.T + b, 0) @ V.T + c
    folded = np.maximum(X @ f.W.T + f.b, 0) @ f.V.T + f.c
    assert np.all(np.abs(full - folded) <= f.resid + 1e-12 * np.abs(full))
    assert repr(f) == "LayerFold(3 units kept, 1 inactive, 1 zero, 1 dependent, affine)"
