# Toolchain file: Debian's gcc-arm-none-eabi + newlib-nano, Cortex-M4F.
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

set(BAREMETAL_CPU_FLAGS -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
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
