"""Quick start: a 2-D map of the digits with MMDAutoencoder, beside PCA.

Run ``python examples/quickstart.py``; it prints one small table in well under a
minute on a laptop CPU.
"""

import time

from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_aae import MMDAutoencoder, mmd_to_prior

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

models = {
    "PCA": make_pipeline(MinMaxScaler(), PCA(n_components=2, whiten=True)),
    "MMDAutoencoder": make_pipeline(
        MinMaxScaler(), MMDAutoencoder(n_components=2, random_state=0)
    ),
}
print(f"{'model':<16}{'kNN accuracy':>14}{'MMD^2 to N(0,I)':>18}{'fit time':>10}")
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train)
    seconds = time.perf_counter() - start
    Z_train, Z_test = model.transform(X_train), model.transform(X_test)
    accuracy = KNeighborsClassifier().fit(Z_train, y_train).score(Z_test, y_test)
    mmd2 = mmd_to_prior(Z_test)
    print(f"{name:<16}{accuracy:>14.3f}{mmd2:>18.4f}{seconds:>9.1f}s")
