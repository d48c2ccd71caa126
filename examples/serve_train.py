"""Train a 20-feature classifier, register it with its reference profile, point `production` at it.

The training pipeline does this in production (train, register if better, set the alias); here it
is one script so the README's serving example has a real model to serve."""

import tempfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from mlops_client import MlopsClient
from sklearn.ensemble import RandomForestClassifier

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(2000, 20)), columns=[f"feature_{i}" for i in range(20)])
    y = (X["feature_0"] - 0.5 * X["feature_3"] + 0.3 * X["feature_7"] > 0).astype(int)
    model = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(X, y)
    with MlopsClient() as mlops, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump(model, path)
        version = mlops.registry.register_model(
            "churn-clf", framework="sklearn", path=path, metrics={"accuracy": float(model.score(X, y))}
        ).version
        reference = X.assign(label=y, prediction=model.predict(X))
        mlops.monitoring.set_reference("churn-clf", version, reference)
        mlops.registry.set_alias("churn-clf", "production", version)
        print(f"churn-clf version {version} is production")
