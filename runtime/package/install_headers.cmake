# Run by `cmake --install` (see CMakeLists.txt here): installs SEQRUN_PUBLIC_HEADERS that exist and every header
# they include with "..." from the source tree, transitively, keeping their folders (ir/, runtime/, ...) under
# SEQRUN_HEADER_DESTINATION, which is what the headers' own includes expect.
cmake_policy(PUSH)
cmake_policy(VERSION 3.20)  # install scripts start with old policies; this one uses if(IN_LIST)

set(_pending "")
foreach(_header IN LISTS SEQRUN_PUBLIC_HEADERS)
  if(EXISTS "${SEQRUN_SOURCE_DIR}/${_header}")
    list(APPEND _pending "${_header}")
  endif()
endforeach()

set(_found "")
while(_pending)
  list(POP_FRONT _pending _header)
  if("${_header}" IN_LIST _found)
    continue()
  endif()
  if(NOT EXISTS "${SEQRUN_SOURCE_DIR}/${_header}")
    message(FATAL_ERROR "seqrun: a public header includes \"${_header}\", which is not in the source tree")
  endif()
  list(APPEND _found "${_header}")
  file(STRINGS "${SEQRUN_SOURCE_DIR}/${_header}" _includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]")
  foreach(_line IN LISTS _includes)
    if(_line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      list(APPEND _pending "${CMAKE_MATCH_1}")
    elseif(_line MATCHES "#[ \t]*include[ \t]*<([^>]+/[^>]+)>" AND NOT CMAKE_MATCH_1 MATCHES "^fmt/")
      # Consumers get fmt through the package; any other library header would be missing for them.
      message(WARNING "seqrun: public header ${_header} includes <${CMAKE_MATCH_1}>, which consumers may lack")
    endif()
  endforeach()
endwhile()

list(SORT _found)
foreach(_header IN LISTS _found)
  get_filename_component(_folder "${_header}" DIRECTORY)
  file(INSTALL DESTINATION "${SEQRUN_HEADER_DESTINATION}/${_folder}" TYPE FILE
       FILES "${SEQRUN_SOURCE_DIR}/${_header}")
endforeach()

cmake_policy(POP)
