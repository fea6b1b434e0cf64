# ctest entries for the torch-exported Mamba blocks in tests/data/ssm (regenerate them with
# `/usr/bin/python3 tests/reference/mamba_block.py`): `seqrun-export check` must match PyTorch's outputs at
# -O0 (the scripted scan runs as an ONNX Loop) and at -O1, where fuse-ssm-scan must have turned every Loop into
# one SelectiveScan node.
#
# This file has two roles. Included from tests/CMakeLists.txt it adds the tests. Run as a script
# (`cmake -DEXPORT_TOOL=... -DDATA_DIR=... -DOPT_LEVEL=... -P ssm.cmake`) it runs the check and, at -O1, reads
# each result line's op list ("PASS name ops: A=1 B=2 ...") and requires SelectiveScan=1 and no Loop.

if(CMAKE_SCRIPT_MODE_FILE)
  execute_process(COMMAND ${EXPORT_TOOL} check -O${OPT_LEVEL} ${DATA_DIR} RESULT_VARIABLE exit_code
                  OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT exit_code EQUAL 0)
    message(FATAL_ERROR "seqrun-export check -O${OPT_LEVEL} failed (exit code ${exit_code})")
  endif()
  string(REGEX MATCHALL "PASS [^\n]*" lines "${out}")
  list(LENGTH lines count)
  if(count LESS 2)
    message(FATAL_ERROR "expected the two mamba_block tests to pass, got ${count} PASS lines")
  endif()
  if(OPT_LEVEL EQUAL 1)
    foreach(line IN LISTS lines)
      if(NOT line MATCHES " SelectiveScan=1( |$)")
        message(FATAL_ERROR "no single SelectiveScan after -O1: ${line}")
      endif()
      if(line MATCHES " (Loop|Scan|LinearRecurrence)=")
        message(FATAL_ERROR "a loop survived -O1: ${line}")
      endif()
    endforeach()
  endif()
  return()
endif()

foreach(level 0 1)
  add_test(NAME ssm_mamba_block_O${level}
           COMMAND ${CMAKE_COMMAND} -DEXPORT_TOOL=$<TARGET_FILE:seqrun-export> -DDATA_DIR=${PROJECT_SOURCE_DIR}/tests/data/ssm
                   -DOPT_LEVEL=${level} -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(ssm_mamba_block_O${level} PROPERTIES LABELS "conformance;onnx;ssm" TIMEOUT 120)
endforeach()
