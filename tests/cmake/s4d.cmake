# ctest entries for the torch-exported S4D layers in tests/data/ssm/s4d (regenerate them with
# `/usr/bin/python3 tests/reference/s4d_layer.py`): `seqrun-export check` must match PyTorch's float32 outputs
# at -O0 (the scripted scan runs as an ONNX Loop) and at -O1, where fuse-lti-scan must have turned the Loop of
# every s4d_layer_* model into one LTIScan node and left the time-varying look-alike (s4d_gated_loop) a Loop.
# (tests/unit/test_lti_scan.cpp compares the same models with the float64 reference.)
#
# This file has two roles. Included from tests/CMakeLists.txt it adds the tests. Run as a script
# (`cmake -DEXPORT_TOOL=... -DDATA_DIR=... -DOPT_LEVEL=... -P s4d.cmake`) it runs the check and, at -O1, reads
# each result line's op list ("PASS name ops: A=1 B=2 ...").

if(CMAKE_SCRIPT_MODE_FILE)
  execute_process(COMMAND ${EXPORT_TOOL} check -O${OPT_LEVEL} ${DATA_DIR} RESULT_VARIABLE exit_code
                  OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT exit_code EQUAL 0)
    message(FATAL_ERROR "seqrun-export check -O${OPT_LEVEL} failed (exit code ${exit_code})")
  endif()
  string(REGEX MATCHALL "PASS [^\n]*" lines "${out}")
  list(LENGTH lines count)
  if(count LESS 3)
    message(FATAL_ERROR "expected the three S4D tests to pass, got ${count} PASS lines")
  endif()
  if(OPT_LEVEL EQUAL 1)
    foreach(line IN LISTS lines)
      if(line MATCHES "^PASS s4d_layer_")
        if(NOT line MATCHES " LTIScan=1( |$)")
          message(FATAL_ERROR "no single LTIScan after -O1: ${line}")
        endif()
        if(line MATCHES " (Loop|Scan)=")
          message(FATAL_ERROR "a loop survived -O1: ${line}")
        endif()
      elseif(line MATCHES "^PASS s4d_gated_")
        if(line MATCHES " LTIScan=" OR NOT line MATCHES " Loop=1( |$)")
          message(FATAL_ERROR "the time-varying scan must stay a Loop: ${line}")
        endif()
      endif()
    endforeach()
  endif()
  return()
endif()

foreach(level 0 1)
  add_test(NAME ssm_s4d_layer_O${level}
           COMMAND ${CMAKE_COMMAND} -DEXPORT_TOOL=$<TARGET_FILE:seqrun-export>
                   -DDATA_DIR=${PROJECT_SOURCE_DIR}/tests/data/ssm/s4d -DOPT_LEVEL=${level} -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(ssm_s4d_layer_O${level} PROPERTIES LABELS "conformance;onnx;ssm" TIMEOUT 120)
endforeach()
