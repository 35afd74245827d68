"""Notebook workloads for the migration benchmark: cells as a user would type them.

Each is sized by a scale factor (1.0 = full size for a 2-core machine) and carries a `verify`
expression, run in the original and each restored kernel, that must give the same value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    cells: list[str]
    verify: str  # a Python expression evaluating to a JSON-serializable value


def training(scale: float) -> Workload:
    """Large, cheap data; a small model whose training loop is the expensive part."""
    rows = int(4_000_000 * scale)  # 32 float64 columns: ~1 GB at full size
    steps = max(20, int(300 * scale))
    return Workload(
        "training",
        f"{rows * 33 * 8 / 1e9:.2f} GB synthetic data (cheap), small MLP trained {steps} steps (slow)",
        [
            "import time\nimport numpy as np\nrng = np.random.default_rng(0)",
            f"X = rng.standard_normal(({rows}, 32))\ntrue_w = rng.standard_normal(32)\n"
            f"y = np.tanh(X @ true_w) + 0.1 * rng.standard_normal({rows})",
            "def forward(p, xb):\n    h = np.maximum(xb @ p['W1'] + p['b1'], 0.0)\n    return h, h @ p['W2'] + p['b2']",
            "params = {'W1': rng.standard_normal((32, 256)) * 0.1, 'b1': np.zeros(256),\n"
            "          'W2': rng.standard_normal(256) * 0.1, 'b2': 0.0}\nlosses = []",
            f"for step in range({steps}):\n"
            "    idx = rng.integers(0, len(X), 16384)\n"
            "    xb, yb = X[idx], y[idx]\n"
            "    h, out = forward(params, xb)\n"
            "    err = out - yb\n"
            "    losses.append(float(np.mean(err ** 2)))\n"
            "    gW2 = h.T @ err / len(xb)\n"
            "    dh = np.outer(err, params['W2']) * (h > 0)\n"
            "    gW1 = xb.T @ dh / len(xb)\n"
            "    params['W2'] -= 0.05 * gW2\n    params['b2'] -= 0.05 * float(err.mean())\n"
            "    params['W1'] -= 0.05 * gW1\n    params['b1'] -= 0.05 * dh.mean(axis=0)",
            "val_loss = float(np.mean((forward(params, X[:20_000])[1] - y[:20_000]) ** 2))",
        ],
        "[round(val_loss, 10), round(float(params['W1'].sum()), 8), len(losses), round(float(X[::997].sum()), 6)]",
    )


def features(scale: float) -> Workload:
    """A pandas feature-engineering notebook: object strings, groupby, merge, a fitted model."""
    rows = int(3_000_000 * scale)
    users = max(1000, int(200_000 * scale))
    return Workload(
        "pandas-features",
        f"{rows:,} events with string columns, groupby/merge features, logistic regression",
        [
            "import numpy as np\nimport pandas as pd\nrng = np.random.default_rng(1)",
            "cities = np.array([f'city_{i:03d}' for i in range(300)], dtype=object)\n"
            f"events = pd.DataFrame({{\n"
            f"    'user': rng.integers(0, {users}, {rows}),\n"
            f"    'city': cities[rng.integers(0, 300, {rows})],\n"
            f"    'amount': rng.gamma(2.0, 30.0, {rows}),\n"
            f"    'ts': pd.Timestamp('2026-01-01') + pd.to_timedelta(rng.integers(0, 86400 * 90, {rows}), unit='s'),\n"
            f"    'note': [f'order #{{i}}' for i in range({rows})],\n"
            "})",
            "events['hour'] = events['ts'].dt.hour\nevents['weekend'] = events['ts'].dt.day_of_week >= 5\n"
            "events['city_code'] = events['city'].str.slice(5).astype(int)",
            "per_user = events.groupby('user').agg(n=('amount', 'size'), total=('amount', 'sum'),\n"
            "    mean=('amount', 'mean'), cities=('city', 'nunique'), last=('ts', 'max'))\n"
            "per_city = events.groupby('city')['amount'].agg(['mean', 'std'])",
            "table = events.merge(per_user, left_on='user', right_index=True)\n"
            "table = table.merge(per_city, left_on='city', right_index=True, suffixes=('', '_city'))\n"
            "table['label'] = (table['amount'] > table['mean_city']).astype(int)",
            "from sklearn.linear_model import LogisticRegression\n"
            "cols = ['hour', 'weekend', 'city_code', 'n', 'total', 'mean', 'cities', 'std']\n"
            "Xf = table[cols].to_numpy(dtype=float)\nXf = (Xf - Xf.mean(axis=0)) / (Xf.std(axis=0) + 1e-9)\n"
            "clf = LogisticRegression(max_iter=300).fit(Xf, table['label'].to_numpy())",
            "scores = clf.predict_proba(Xf)[:, 1]\ntop = table.assign(score=scores).nlargest(1000, 'score')",
        ],
        "[len(table), round(float(table['total'].sum()), 3), [round(float(c), 6) for c in clf.coef_.ravel()], "
        "int(top['user'].sum()), int(events['city_code'].sum())]",
    )


def simulation(scale: float) -> Workload:
    """One big array that is expensive to compute (a diffusion simulation) and small summaries."""
    rows = int(10_000 * scale)  # x 12_500 float64: ~1 GB at full size
    steps = 4
    return Workload(
        "big-simulation",
        f"one {rows * 12_500 * 8 / 1e9:.2f} GB array from {steps} slow simulation steps, small summaries",
        [
            "import numpy as np",
            f"rng = np.random.default_rng(2)\nfield = rng.random(({rows}, 12_500))",
            f"for t in range({steps}):\n"
            "    nxt = 0.5 * field\n"
            "    nxt += 0.125 * np.roll(field, 1, axis=0)\n    nxt += 0.125 * np.roll(field, -1, axis=0)\n"
            "    nxt += 0.125 * np.roll(field, 1, axis=1)\n    nxt += 0.125 * np.roll(field, -1, axis=1)\n"
            "    field = np.sqrt(nxt * (1.0 + 0.01 * np.sin(nxt)))\n"
            "del nxt",
            "profile = field.mean(axis=1)\nstats = {'min': float(field.min()), 'max': float(field.max())}",
        ],
        "[round(float(profile.sum()), 8), stats, round(float(field[::101, ::89].sum()), 8)]",
    )


def all_workloads(scale: float) -> list[Workload]:
    return [training(scale), features(scale), simulation(scale)]
