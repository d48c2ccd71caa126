"""Framework-free codecs of the prediction protocols: every decoder turns a raw body into `Inputs`
(or raises `ProtocolError`), every encoder turns model output into the protocol's answer bytes."""

from model_serving.protocols.common import (
    MAX_COLUMNS,
    MAX_ROWS,
    MAX_STRING,
    Inputs,
    ProtocolError,
    UnsupportedContentType,
)
from model_serving.protocols.invocations import decode_invocations, encode_invocations
from model_serving.protocols.predict import (
    decode_deployment_predict,
    decode_predict,
    encode_deployment_predict,
    encode_predict,
)
from model_serving.protocols.v2 import (
    DATATYPES,
    OUTPUTS,
    decode_v2_infer,
    encode_v2_infer,
    v2_datatype,
    v2_model_metadata,
)

__all__ = [
    "DATATYPES",
    "MAX_COLUMNS",
    "MAX_ROWS",
    "MAX_STRING",
    "OUTPUTS",
    "Inputs",
    "ProtocolError",
    "UnsupportedContentType",
    "decode_deployment_predict",
    "decode_invocations",
    "decode_predict",
    "decode_v2_infer",
    "encode_deployment_predict",
    "encode_invocations",
    "encode_predict",
    "encode_v2_infer",
    "v2_datatype",
    "v2_model_metadata",
]
