# ONNX operator conformance: seqrun-export check over ONNX's own backend tests. The copied opset 19-28
# tests (tests/data/onnx-node) must all pass at -O1 and -O0 except what tests/conformance-exclude.txt lists;
# Debian's libonnx-testdata (opsets <= 17) runs with --skip-unsupported, so ops seqrun lacks print SKIP.
set(SEQRUN_CONFORMANCE_EXCLUDE ${PROJECT_SOURCE_DIR}/tests/conformance-exclude.txt)
set(SEQRUN_ONNX_NODE_TESTS ${PROJECT_SOURCE_DIR}/tests/data/onnx-node)

add_test(NAME onnx_node_conformance_O1
         COMMAND $<TARGET_FILE:seqrun-export> check -O1 --exclude ${SEQRUN_CONFORMANCE_EXCLUDE}
                 ${SEQRUN_ONNX_NODE_TESTS})
add_test(NAME onnx_node_conformance_O0
         COMMAND $<TARGET_FILE:seqrun-export> check -O0 --exclude ${SEQRUN_CONFORMANCE_EXCLUDE}
                 ${SEQRUN_ONNX_NODE_TESTS})
set_tests_properties(onnx_node_conformance_O1 onnx_node_conformance_O0 PROPERTIES LABELS "conformance;onnx"
                     TIMEOUT 600)

set(SEQRUN_LIBONNX_TESTDATA /usr/share/libonnx-testdata/data/node)
if(EXISTS ${SEQRUN_LIBONNX_TESTDATA})
  add_test(NAME libonnx_testdata_conformance
           COMMAND $<TARGET_FILE:seqrun-export> check -O1 --skip-unsupported --exclude ${SEQRUN_CONFORMANCE_EXCLUDE}
                   ${SEQRUN_LIBONNX_TESTDATA})
  set_tests_properties(libonnx_testdata_conformance PROPERTIES LABELS "conformance;onnx" TIMEOUT 900)
else()
  message(STATUS "seqrun: ${SEQRUN_LIBONNX_TESTDATA} not found (apt-get install libonnx-testdata); "
                 "skipping the libonnx-testdata conformance test")
endif()
