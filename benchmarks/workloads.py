"""Notebook workloads for the migration benchmark: cells as a user would type them.

Each is sized by a scale factor (1.0 = full size for a 2-core machine) and carries a `verify`
expression, run in the original and each restored kernel, that must give the same value.
"""

from __future__ import annotations

import importlib.util
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


def sales_eda(scale: float) -> Workload:
    """A Colab-typical pandas EDA: dates parsed from strings, a category, merges, groupbys, a
    groupby-apply, a row-wise apply, a pivot and a figure (the shape users reported +213% on)."""
    rows = int(3_000_000 * scale)
    sample = max(1000, int(150_000 * scale))
    return Workload(
        "sales-eda",
        f"{rows:,} sales rows: string dates parsed, category, 2 merges, groupbys, apply, pivot, figure",
        [
            "import numpy as np\nimport pandas as pd\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "rng = np.random.default_rng(3)",
            "stores = pd.DataFrame({'store': np.arange(50), 'region': [f'region_{i % 7}' for i in range(50)],\n"
            "                       'size_m2': rng.integers(200, 5000, 50)})\n"
            "products = pd.DataFrame({'product': np.arange(400), 'family': [f'family_{i % 12}' for i in range(400)],\n"
            "                         'price': rng.gamma(3.0, 4.0, 400).round(2)})",
            f"days = pd.date_range('2024-01-01', periods=730).strftime('%Y-%m-%d').to_numpy()\n"
            f"sales = pd.DataFrame({{'date': days[rng.integers(0, 730, {rows})],\n"
            f"                      'store': rng.integers(0, 50, {rows}), 'product': rng.integers(0, 400, {rows}),\n"
            f"                      'units': rng.poisson(3.0, {rows}),\n"
            f"                      'channel': rng.choice(['web', 'shop', 'phone'], {rows})}})",
            "sales['date'] = pd.to_datetime(sales['date'], format='%Y-%m-%d')",
            "sales['channel'] = sales['channel'].astype('category')",
            "sales = sales.merge(stores, on='store').merge(products, on='product')",
            "sales['revenue'] = sales['units'] * sales['price']\nsales['month'] = sales['date'].dt.to_period('M')",
            "sales.describe()",
            "by_region = sales.groupby('region')['revenue'].agg(['sum', 'mean', 'count'])",
            "by_family = sales.groupby(['family', 'channel'], observed=True)['units'].sum().unstack()",
            "monthly = sales.groupby('month')['revenue'].sum()",
            "top_products = sales.groupby('store').apply(lambda g: g.nlargest(3, 'revenue')['product'].tolist(),\n"
            "                                            include_groups=False)",
            f"sample = sales.sample({sample}, random_state=0)\n"
            "sample['score'] = sample.apply(lambda r: r['revenue'] / (1 + r['size_m2'] / 1000), axis=1)",
            "pivot = sales.pivot_table(index='region', columns='channel', values='revenue', aggfunc='sum', observed=True)",
            "weekday = sales['date'].dt.day_name()\nby_weekday = sales.groupby(weekday)['units'].mean()",
            "fig, axes = plt.subplots(1, 2, figsize=(10, 4))\nmonthly.plot(ax=axes[0])\npivot.plot.bar(ax=axes[1])",
            "axes[0].set_title('revenue per month')",
            "summary = {'rows': len(sales), 'revenue': float(sales['revenue'].sum()), 'regions': len(by_region)}",
        ],
        "[summary['rows'], round(summary['revenue'], 2), round(float(pivot.to_numpy().sum()), 2), "
        "round(float(sample['score'].sum()), 4), len(top_products), axes[0].get_title(), "
        "[round(float(x), 6) for x in by_weekday.to_numpy()]]",
    )


def sklearn_notebook(scale: float) -> Workload:
    """A Colab-typical scikit-learn notebook: split, scale, a 200-tree forest, a small grid search,
    metrics and a confusion-matrix figure."""
    rows = max(2000, int(60_000 * scale))
    return Workload(
        "sklearn",
        f"{rows:,} x 20 classification: scaler, 200-tree forest, 6-fit grid search, metrics, figure",
        [
            "import numpy as np\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "from sklearn.datasets import make_classification\nfrom sklearn.model_selection import train_test_split, GridSearchCV\n"
            "from sklearn.preprocessing import StandardScaler\nfrom sklearn.ensemble import RandomForestClassifier\n"
            "from sklearn.linear_model import LogisticRegression\nfrom sklearn.metrics import accuracy_score, confusion_matrix",
            f"X, y = make_classification(n_samples={rows}, n_features=20, n_informative=8, random_state=0)",
            "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)",
            "scaler = StandardScaler().fit(X_train)\nX_train_s, X_test_s = scaler.transform(X_train), scaler.transform(X_test)",
            "forest = RandomForestClassifier(n_estimators=200, max_depth=12, random_state=0, n_jobs=1).fit(X_train_s, y_train)",
            "forest_acc = accuracy_score(y_test, forest.predict(X_test_s))",
            "grid = GridSearchCV(LogisticRegression(max_iter=500), {'C': [0.1, 1.0, 10.0]}, cv=2).fit(X_train_s, y_train)",
            "grid_acc = grid.score(X_test_s, y_test)",
            "importances = forest.feature_importances_",
            "cm = confusion_matrix(y_test, forest.predict(X_test_s))\nfig, ax = plt.subplots()\nax.imshow(cm)\nax.set_title('confusion')",
        ],
        "[round(float(forest_acc), 6), round(float(grid_acc), 6), grid.best_params_['C'], cm.tolist(), "
        "[round(float(v), 8) for v in importances]]",
    )


def torch_training(scale: float) -> Workload:
    """A PyTorch notebook: a large synthetic tensor data set split into views, an MLP trained
    with Adam for a few hundred steps (the slow part), a validation loss."""
    rows = max(20_000, int(1_500_000 * scale))  # 65 float32 columns: ~0.4 GB at full size
    steps = max(20, int(400 * scale))
    split = int(rows * 0.9)
    return Workload(
        "torch-training",
        f"{rows * 65 * 4 / 1e9:.2f} GB synthetic tensors (cheap) in train/validation views, "
        f"MLP trained {steps} Adam steps (slow)",
        [
            "import torch\nimport torch.nn.functional as F\ntorch.manual_seed(0)",
            f"X = torch.randn({rows}, 64)\ntrue_w = torch.randn(64)\ny = torch.tanh(X @ true_w) + 0.1 * torch.randn({rows})",
            f"X_train, y_train = X[:{split}], y[:{split}]\nX_val, y_val = X[{split}:], y[{split}:]",
            "model = torch.nn.Sequential(torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),\n"
            "                            torch.nn.ReLU(), torch.nn.Linear(512, 1))\n"
            "opt = torch.optim.Adam(model.parameters(), lr=1e-3)\nlosses = []",
            f"for step in range({steps}):\n"
            "    idx = torch.randint(0, len(X_train), (4096,))\n"
            "    loss = F.mse_loss(model(X_train[idx]).squeeze(1), y_train[idx])\n"
            "    opt.zero_grad()\n    loss.backward()\n    opt.step()\n    losses.append(loss.item())",
            "model.eval()\nwith torch.no_grad():\n    val_loss = F.mse_loss(model(X_val).squeeze(1), y_val).item()",
        ],
        "[round(val_loss, 8), round(float(sum(p.double().sum() for p in model.parameters())), 6), len(losses), "
        "round(float(X[::997].double().sum()), 4), X_train.untyped_storage().data_ptr() == X.untyped_storage().data_ptr(), "
        "sorted(opt.state_dict()['state'])]",
    )


def all_workloads(scale: float) -> list[Workload]:
    """The five notebooks, and the PyTorch one where torch is installed (it is not on the Colab
    stack this repository builds: PyPI's torch is a several-GB CUDA build)."""
    found = [training(scale), features(scale), simulation(scale), sales_eda(scale), sklearn_notebook(scale)]
    return found + ([torch_training(scale)] if importlib.util.find_spec("torch") is not None else [])
