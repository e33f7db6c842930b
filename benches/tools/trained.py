"""The trained Goldstein-Price regressors of the bound-tightening benchmarks, cached.

`[2,1024,512,512,256,1]`, `[2,256,128,128,64,1]` and `[2,128,128,64,1]` (a size OMLT still
solves, for the MILP benchmarks), 40,000 seeded samples of the study's
box, L1 regularisation 1e-3, Adam, 5 epochs, on the raw targets as the study did (on
min-max-scaled targets an L1 of 1e-3 outweighs the loss and the networks collapse to a
few live units: RMSE ~2,800 and every layer but the first stable). Trained once and cached
in benches/.cache (not committed).
"""

from pathlib import Path

from emlpress import Network
from emlpress.data import goldstein, sir
from emlpress.metrics import rmse

CACHE = Path(__file__).resolve().parents[1] / ".cache"  # benches/.cache, beside conftest.py's
HIDDEN = {"gp_2-1024-512-512-256-1": [1024, 512, 512, 256], "gp_2-256-128-128-64-1": [256, 128, 128, 64],
          "gp_2-128-128-64-1": [128, 128, 64]}


#: the network of issue 18 (HiGHS' MIP bounds excluded values it takes): Adam, L2 1e-2,
#: standardised targets, 40 epochs, batch 256
L2_NET = "gp-l2_2-256-128-128-64-1"


def trained(name: str) -> Network:
    path = CACHE / f"{name}-raw.npz"
    if path.exists():
        return Network.load(path)
    from emlpress.train import fit_regressor  # TensorFlow: only when a network is not cached yet

    if name == L2_NET:
        X, y = goldstein.sample(40_000, seed=0)
        res = fit_regressor(X, y, [256, 128, 128, 64], l2=1e-2, epochs=40, batch_size=256,
                            seed=0, lo=goldstein.LO, hi=goldstein.HI, patience=40)
        CACHE.mkdir(exist_ok=True)
        res.net.save(path)
        return res.net

    X, y = goldstein.sample(40_000, seed=0)
    res = fit_regressor(X, y, HIDDEN[name], l1=1e-3, epochs=5, batch_size=64, seed=0,
                        lo=goldstein.LO, hi=goldstein.HI, scale_targets=False)
    CACHE.mkdir(exist_ok=True)
    res.net.save(path)
    return res.net


def sir_network(topology: str) -> Network:
    """The epidemics pipeline's one-week SIR model of ``topology`` (its TOPOLOGIES), trained
    as ``emlpress epidemics run`` trains it (seed 0, 10,000 samples, Adam, 100 epochs with
    early stopping), cached."""
    path = CACHE / f"sir_{topology}.npz"
    if path.exists():
        return Network.load(path)
    from emlpress.pipelines import epidemics as E  # Dask and scikit-learn: the SIR rows only
    from emlpress.train import fit_regressor  # TensorFlow: only when a network is not cached yet

    c = E.Config()
    Xtr, Ytr, _, _ = sir.dataset(c.n_train, c.n_test, seed=c.seed)
    lo, hi = E.TRAINING_BOX
    res = fit_regressor(Xtr, Ytr, E.TOPOLOGIES[topology], epochs=c.epochs, patience=c.patience,
                        batch_size=c.batch_size, seed=c.seed, learning_rate=c.learning_rate,
                        lo=lo, hi=hi, validation=c.validation)
    CACHE.mkdir(exist_ok=True)
    res.net.save(path)
    return res.net


if __name__ == "__main__":
    for name in HIDDEN:
        net = trained(name)
        Xt, yt = goldstein.sample(10_000, seed=1)
        print(name, net, "test RMSE", rmse(net.forward(Xt)[:, 0], yt))
