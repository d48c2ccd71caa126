"""Loading registered models and predicting with them, framework-free (numpy and the model libraries).

`load_model(path)` reads one version's downloaded artifacts: scikit-learn-like estimators in
joblib/pickle files, XGBoost and LightGBM native files, ONNX models (onnxruntime), and MLflow
model directories with the sklearn flavor. Every loaded model has a `Signature` (column names,
count, types, outputs) and `predict(columns, rows) -> Prediction`, which raises `InputMismatch`
for any request that does not fit and `warm()` for a first call before traffic.

Trust rule: pickle, joblib, cloudpickle and skops files are code, not data; unpickling one runs
whatever it contains. They are loaded only from artifacts downloaded from our model registry
whose sha256 the caller has verified against the registry's record. This module never fetches
anything and must not be pointed at files from elsewhere.
"""

from model_serving.loading.detect import load_model
from model_serving.loading.errors import InputMismatch, ModelLoadError
from model_serving.loading.signature import LoadedModel, Prediction, Signature

__all__ = ["InputMismatch", "LoadedModel", "ModelLoadError", "Prediction", "Signature", "load_model"]
