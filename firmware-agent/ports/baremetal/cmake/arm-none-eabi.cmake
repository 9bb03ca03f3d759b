# Toolchain file: Debian's gcc-arm-none-eabi + newlib-nano, Cortex-M4F (or the board's CPU).
# The CPU flags live in BAREMETAL_CPU_FLAGS and are added by CMakeLists.txt
# with add_compile_options()/add_link_options(), so a user's
# -DCMAKE_C_FLAGS=... on the command line cannot drop them.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy)
set(CMAKE_SIZE arm-none-eabi-size)

# Cortex-M4F unless the board header (src/boards/<board>.h, BAREMETAL_BOARD) has a line
#   #define BOARD_GCC_CPU_FLAGS "<flags>"   (the NUCLEO-F746ZG: Cortex-M7, fpv5-sp-d16)
# The board reaches the compiler checks' try_compile projects too (the platform variables).
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES BAREMETAL_BOARD)
set(BAREMETAL_CPU_FLAGS -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
if (BAREMETAL_BOARD)
  string(REPLACE "-" "_" _board_id "${BAREMETAL_BOARD}")
  set(_board_h ${CMAKE_CURRENT_LIST_DIR}/../src/boards/${_board_id}.h)
  if (EXISTS ${_board_h})
    file(STRINGS ${_board_h} _cpu REGEX "^#define BOARD_GCC_CPU_FLAGS ")
    if (_cpu)
      string(REGEX REPLACE "^#define BOARD_GCC_CPU_FLAGS \"([^\"]*)\".*" "\\1" _cpu "${_cpu}")
      separate_arguments(BAREMETAL_CPU_FLAGS UNIX_COMMAND "${_cpu}")
    endif ()
  endif ()
endif ()
# Also in the init flags so CMake's compiler checks pick the right multilib.
string(REPLACE ";" " " _cpu "${BAREMETAL_CPU_FLAGS}")
set(CMAKE_C_FLAGS_INIT "${_cpu}")
set(CMAKE_ASM_FLAGS_INIT "${_cpu}")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${_cpu}")

# No host programs can run: test compilers with a static library only.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
