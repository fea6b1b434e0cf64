# Conformance run over the PyTorch-exported ONNX models in tests/data/models (regenerate them with
# `/usr/bin/python3 tests/reference/export_models.py`): seqrun's outputs must match PyTorch's saved outputs.
add_test(NAME onnx_models_conformance
         COMMAND $<TARGET_FILE:seqrun-export> check ${PROJECT_SOURCE_DIR}/tests/data/models)
set_tests_properties(onnx_models_conformance PROPERTIES LABELS "conformance;onnx" TIMEOUT 300)

# Models that call ONNX model-local functions (inlined by the importer); see tests/reference/gen_function_models.py.
add_test(NAME onnx_function_models COMMAND $<TARGET_FILE:seqrun-export> check ${PROJECT_SOURCE_DIR}/tests/data/onnx-functions)
set_tests_properties(onnx_function_models PROPERTIES LABELS "conformance;onnx")
