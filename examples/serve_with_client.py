"""Predict through model serving with the Python client and with MLflow's own scoring client,
then read the predictions back from model monitoring."""

import os
import time
from urllib.parse import urlparse

import numpy as np
import pandas as pd
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
from mlops_client import MlopsClient

rows = np.random.default_rng(1).normal(size=(50, 20)).round(4).tolist()

with MlopsClient() as mlops:
    # a batch through the deployment's route: each row gets its own request id to label it with later
    answer = mlops.serving.predict("churn-api", rows, user_id="user_123")
    first = answer.predictions[0]
    print(first.prediction, first.probability, first.model_version, first.request_id)

    # the truth arrives later: labels join the logged predictions by request id
    labels = [{"request_id": p.request_id, "label": int(p.prediction)} for p in answer.predictions]
    print(mlops.serving.outcomes("churn-api", labels))

    # MLflow's scoring client speaks /invocations (dataframe_split), as against `mlflow models serve`
    url = urlparse(os.environ.get("MLOPS_MODEL_SERVING_URL", "http://127.0.0.1:8080"))
    mlflow_client = ScoringServerClient(url.hostname, url.port)
    frame = pd.DataFrame(rows, columns=[f"feature_{i}" for i in range(20)])
    print(mlflow_client.invoke(frame).get_predictions().head(3))

    # every prediction reached model monitoring: drift and live performance of the window
    deadline = time.monotonic() + 60
    while (drift := mlops.monitoring.drift("churn-clf", last="1h")).window.count < 100:
        assert time.monotonic() < deadline, "predictions did not reach monitoring"
        time.sleep(0.5)
    print("drifted:", drift.drifted, "rows:", drift.window.count)
    print(mlops.monitoring.performance("churn-clf", last="1h").metrics)
