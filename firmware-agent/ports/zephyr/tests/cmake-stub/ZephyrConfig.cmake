# CMAKE STUB, not Zephyr: what find_package(Zephyr) gives the port's CMakeLists.txt, reduced to what
# it uses, so that tests/syntax-check.sh can configure it (cmake -DZephyr_DIR=<this folder>)
# without a Zephyr tree, and then check what Zephyr cannot check for it: WAMR is a library that
# links zephyr_interface, waits for zephyr_generated_headers (a library added after
# find_package(Zephyr) is not ordered by Zephyr: Zephyr 4.4 migration notes) and is linked into
# `app`; `app`'s sources hold every core/*.c and src/*.c, src/port_mpu.c exactly when
# CONFIG_ARM_MPU. Nothing is compiled.
#   -DWASMBED_STUB_CONFIG=<file>: the merged CONFIG_X=V lines, set as CMake variables as Zephyr does.

add_library(zephyr_interface INTERFACE)
add_custom_target(zephyr_generated_headers)
add_library(app STATIC)

if(NOT WASMBED_STUB_CONFIG)
  message(FATAL_ERROR "cmake stub: set -DWASMBED_STUB_CONFIG=<merged CONFIG_X=V file>")
endif()
file(STRINGS ${WASMBED_STUB_CONFIG} wasmbed_stub_lines REGEX "^CONFIG_[A-Za-z0-9_]+=")
foreach(line ${wasmbed_stub_lines})
  string(REGEX MATCH "^(CONFIG_[A-Za-z0-9_]+)=(.*)$" _ "${line}")
  set(${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
endforeach()

# Zephyr's extensions.cmake, reduced. zephyr_library_named() in an application (the CMake source
# dir is the application's, always the case here) only warns there; the stub warns the same way and
# tests/syntax-check.sh fails on any CMake warning.
macro(zephyr_library_named name)
  if("${CMAKE_CURRENT_SOURCE_DIR}" STREQUAL "${CMAKE_SOURCE_DIR}")
    message(WARNING "zephyr_library_named() called in Zephyr CMake application mode. `${name}` "
      "will not be treated as a Zephyr library. To create a Zephyr library in Zephyr CMake kernel "
      "mode consider creating a Zephyr module. See more here: "
      "https://docs.zephyrproject.org/latest/guides/modules.html")
  endif()
  add_library(${name} STATIC)
  target_link_libraries(${name} PUBLIC zephyr_interface)
  set(ZEPHYR_CURRENT_LIBRARY ${name})
endmacro()
function(zephyr_library_sources)
  target_sources(${ZEPHYR_CURRENT_LIBRARY} PRIVATE ${ARGN})
endfunction()
function(zephyr_library_compile_definitions)
  target_compile_definitions(${ZEPHYR_CURRENT_LIBRARY} PRIVATE ${ARGN})
endfunction()
# Linker options for the final zephyr.elf (Zephyr collects them in zephyr_ld_options' property).
function(zephyr_ld_options)
  set_property(GLOBAL APPEND PROPERTY wasmbed_stub_ld_options ${ARGN})
endfunction()
function(target_sources_ifdef feature target scope)
  if(${feature})
    target_sources(${target} ${scope} ${ARGN})
  endif()
endfunction()

# After the whole CMakeLists.txt: the checks.
function(wasmbed_stub_check)
  get_property(targets DIRECTORY ${CMAKE_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
  set(wamr_lib "")
  foreach(t ${targets})
    get_target_property(srcs ${t} SOURCES)
    if(srcs MATCHES "wasm_runtime_common\\.c")
      set(wamr_lib ${t})
    endif()
  endforeach()
  if(NOT wamr_lib)
    message(FATAL_ERROR "cmake stub: no library builds WAMR's sources")
  endif()
  get_target_property(deps ${wamr_lib} MANUALLY_ADDED_DEPENDENCIES)
  if(NOT "zephyr_generated_headers" IN_LIST deps)
    message(FATAL_ERROR "cmake stub: ${wamr_lib} does not depend on zephyr_generated_headers")
  endif()
  get_target_property(libs ${wamr_lib} LINK_LIBRARIES)
  if(NOT "zephyr_interface" IN_LIST libs)
    message(FATAL_ERROR "cmake stub: ${wamr_lib} does not link zephyr_interface (Zephyr's flags)")
  endif()
  get_target_property(app_libs app LINK_LIBRARIES)
  if(NOT "${wamr_lib}" IN_LIST app_libs)
    message(FATAL_ERROR "cmake stub: app does not link ${wamr_lib}")
  endif()
  get_target_property(app_srcs app SOURCES)
  if(CONFIG_ARM_MPU AND NOT app_srcs MATCHES "port_mpu\\.c")
    message(FATAL_ERROR "cmake stub: CONFIG_ARM_MPU but src/port_mpu.c is not built")
  elseif(NOT CONFIG_ARM_MPU AND app_srcs MATCHES "port_mpu\\.c")
    message(FATAL_ERROR "cmake stub: src/port_mpu.c built without CONFIG_ARM_MPU")
  endif()
  # Every core source and every port source (port_mpu.c as above) is in app's SOURCES as CMake
  # sees them (a source named only in a comment or a dead branch is not built: the link fails).
  set(app_abs "")
  foreach(s ${app_srcs})
    get_filename_component(a "${s}" ABSOLUTE BASE_DIR "${CMAKE_SOURCE_DIR}")
    list(APPEND app_abs "${a}")
  endforeach()
  file(GLOB want "${CMAKE_SOURCE_DIR}/../../core/*.c" "${CMAKE_SOURCE_DIR}/src/*.c")
  foreach(w ${want})
    get_filename_component(a "${w}" ABSOLUTE)
    get_filename_component(n "${w}" NAME)
    if(NOT a IN_LIST app_abs AND NOT n STREQUAL "port_mpu.c")
      message(FATAL_ERROR "cmake stub: app does not build ${n} (${a})")
    endif()
  endforeach()
  # Every __wrap_NAME defined in src/*.c is linked with -Wl,--wrap=NAME (else it is dead code and
  # the forced stop's WAMR-lock guard silently does nothing).
  get_property(ld_opts GLOBAL PROPERTY wasmbed_stub_ld_options)
  file(GLOB port_srcs "${CMAKE_SOURCE_DIR}/src/*.c")
  foreach(f ${port_srcs})
    file(STRINGS "${f}" wrap_defs REGEX "^[a-z].* __wrap_[A-Za-z0-9_]+\\(")
    foreach(d ${wrap_defs})
      string(REGEX MATCH "__wrap_([A-Za-z0-9_]+)\\(" _ "${d}")
      set(fn "${CMAKE_MATCH_1}")
      if(NOT ld_opts MATCHES "--wrap=${fn}(,|;|$)")
        message(FATAL_ERROR "cmake stub: ${f} defines __wrap_${fn} but no "
          "zephyr_ld_options(-Wl,--wrap=${fn}) links it")
      endif()
    endforeach()
  endforeach()
  message(STATUS "cmake stub: ${wamr_lib} ok (zephyr_interface, zephyr_generated_headers, linked into app); "
    "app builds every core/*.c and src/*.c; every __wrap_ in src/ is linked")
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL wasmbed_stub_check)
