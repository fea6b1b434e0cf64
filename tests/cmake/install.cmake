# ctest entry "install_embed": `cmake --install` of this build into a fresh prefix, then the embedding examples
# (tools/examples) configured and built against that prefix with find_package(seqrun), and run on linear.seqrun
# (tests/data/cli/linear.onnx converted by the installed seqrun-export). embed_c.c is also built a second
# time with only the flags `pkg-config --cflags --libs seqrun` prints.
#
# linear.onnx computes y = x @ W + b; for x = [1, -2, 0.5, 3] numpy gives y = [3.375, 2.5, 4.375]
# (tests/reference/gen_cli_models.py, tests/data/cli/linear_y_expected.npy row 0).
#
# Like cli.cmake, this file adds the test when included and is the test when run with `cmake -P`.

if(CMAKE_SCRIPT_MODE_FILE)
  # Runs a command; fails the test unless its exit code is EXPECT (default 0). Output in <prefix>_out/_err.
  function(run_step prefix)
    cmake_parse_arguments(PARSE_ARGV 1 S "" "EXPECT" "COMMAND")
    if(NOT DEFINED S_EXPECT)
      set(S_EXPECT 0)
    endif()
    execute_process(COMMAND ${S_COMMAND} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
    message("$ ${S_COMMAND}\nexit code: ${code}\n--- stdout ---\n${out}--- stderr ---\n${err}--------------")
    if(NOT "${code}" STREQUAL "${S_EXPECT}")
      message(FATAL_ERROR "expected exit code ${S_EXPECT}, got ${code}")
    endif()
    set(${prefix}_out "${out}" PARENT_SCOPE)
    set(${prefix}_err "${err}" PARENT_SCOPE)
  endfunction()

  set(expected_line "y: f32\\[1, 3\\] = 3\\.375 2\\.5 4\\.375\n")
  set(prefix "${WORK_DIR}/prefix")
  file(REMOVE_RECURSE "${WORK_DIR}")
  file(MAKE_DIRECTORY "${WORK_DIR}")

  # 1. Install, and check the layout a consumer relies on.
  run_step(install COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}")
  foreach(file ${LIBDIR}/libseqrun.so include/seqrun/runtime/seqrun.h include/seqrun/runtime/session.h
               include/seqrun/runtime/model.h include/seqrun/ir/status.h ${LIBDIR}/cmake/seqrun/seqrunConfig.cmake
               ${LIBDIR}/cmake/seqrun/seqrunConfigVersion.cmake ${LIBDIR}/cmake/seqrun/seqrunTargets.cmake
               ${LIBDIR}/pkgconfig/seqrun.pc bin/seqrun bin/seqrun-export)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "not installed: ${file}")
    endif()
  endforeach()

  # 2. A model for the examples, made by the installed converter.
  run_step(export COMMAND "${prefix}/bin/seqrun-export" onnx "${SOURCE_DIR}/tests/data/cli/linear.onnx" -o
                          "${WORK_DIR}/linear.seqrun")

  # 3. The examples, as a separate project that only knows the prefix. Sanitized builds need the same
  #    sanitizers in the programs that load the sanitized library.
  set(flags "-Wall -Wextra -Werror")
  if(SANITIZE)
    string(REPLACE "," ";" sanitizers "${SANITIZE}")
    foreach(s IN LISTS sanitizers)
      string(APPEND flags " -fsanitize=${s}")
    endforeach()
  endif()
  run_step(configure COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tools/examples" -B "${WORK_DIR}/build"
                             -G "${GENERATOR}" "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release
                             "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
                             "-DCMAKE_C_FLAGS=${flags}" "-DCMAKE_CXX_FLAGS=${flags}")
  run_step(build COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}/build")

  # 4. Run both; each prints the version, then one line per output.
  foreach(example embed_c embed_cpp)
    run_step(run COMMAND "${WORK_DIR}/build/${example}" "${WORK_DIR}/linear.seqrun" 1 -2 0.5 3)
    if(NOT run_out MATCHES "^seqrun ${VERSION}\n${expected_line}$")
      message(FATAL_ERROR "${example}: unexpected output")
    endif()
    # A missing file is an error message that names it, and exit code 1.
    run_step(missing EXPECT 1 COMMAND "${WORK_DIR}/build/${example}" "${WORK_DIR}/missing.seqrun" 1)
    if(NOT missing_err MATCHES "^${example}: error: [^\n]*missing\\.seqrun[^\n]*\n$")
      message(FATAL_ERROR "${example}: the error for a missing model does not name the file")
    endif()
    # A wrong number of values is refused before running.
    run_step(count EXPECT 1 COMMAND "${WORK_DIR}/build/${example}" "${WORK_DIR}/linear.seqrun" 1 2)
    if(NOT count_err MATCHES "input 'x' has 4 elements, 2 values given")
      message(FATAL_ERROR "${example}: unexpected error for a wrong value count")
    endif()
  endforeach()

  # 5. pkg-config: the C example built with nothing but what seqrun.pc says (plus an rpath to find it).
  find_program(PKG_CONFIG_EXECUTABLE NAMES pkg-config pkgconf)
  if(PKG_CONFIG_EXECUTABLE)
    set(ENV{PKG_CONFIG_PATH} "${prefix}/${LIBDIR}/pkgconfig")
    run_step(pc COMMAND "${PKG_CONFIG_EXECUTABLE}" --cflags --libs seqrun)
    string(STRIP "${pc_out}" pc_flags)
    separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
    separate_arguments(c_flags UNIX_COMMAND "${flags}")
    if(NOT pc_flags MATCHES "-I[^;]*/include/seqrun" OR NOT pc_flags MATCHES "-lseqrun")
      message(FATAL_ERROR "pkg-config flags lack the include folder or -lseqrun: ${pc_flags}")
    endif()
    run_step(cc COMMAND "${C_COMPILER}" -std=c90 -pedantic ${c_flags} "${SOURCE_DIR}/tools/examples/embed_c.c"
                        -o "${WORK_DIR}/embed_c_pkgconfig" ${pc_flags} "-Wl,-rpath,${prefix}/${LIBDIR}")
    run_step(run COMMAND "${WORK_DIR}/embed_c_pkgconfig" "${WORK_DIR}/linear.seqrun" 1 -2 0.5 3)
    if(NOT run_out MATCHES "${expected_line}$")
      message(FATAL_ERROR "embed_c (pkg-config build): unexpected output")
    endif()
  else()
    message("pkg-config not found: the pkg-config build is skipped")
  endif()
  return()
endif()

add_test(NAME install_embed
         COMMAND ${CMAKE_COMMAND} "-DBUILD_DIR=${PROJECT_BINARY_DIR}" "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}"
                 "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install_embed" "-DGENERATOR=${CMAKE_GENERATOR}"
                 "-DC_COMPILER=${CMAKE_C_COMPILER}" "-DCXX_COMPILER=${CMAKE_CXX_COMPILER}"
                 "-DSANITIZE=${SEQRUN_SANITIZE}" "-DVERSION=${PROJECT_VERSION}"
                 "-DLIBDIR=${CMAKE_INSTALL_LIBDIR}" -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(install_embed PROPERTIES LABELS "install" TIMEOUT 600)
