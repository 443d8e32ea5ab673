# Cortex-M4 (Thumb-2, no FPU use) with Debian's arm-none-eabi-gcc 12 and picolibc. Programs link
# with picolibc's semihosting crt0 and I/O, so that under
#   qemu-system-arm -M mps2-an386 -nographic -semihosting-config enable=on,target=native -kernel X
# printf reaches the terminal and main's return value becomes qemu's exit code. The memory map
# is the MPS2 AN386's: 4 MiB of code memory at 0, 4 MiB of SRAM at 0x20000000.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_CXX_COMPILER arm-none-eabi-g++)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(_nomq_cpu "-mcpu=cortex-m4 -mthumb")
set(_nomq_common "${_nomq_cpu} -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_INIT "--specs=picolibc.specs ${_nomq_common}")
# -Wno-psabi: only notes that GCC 7.1 changed how some aggregates are passed, irrelevant here.
set(CMAKE_CXX_FLAGS_INIT
  "--specs=picolibcpp.specs ${_nomq_common} -fno-exceptions -fno-rtti -fno-threadsafe-statics -Wno-psabi")
set(CMAKE_EXE_LINKER_FLAGS_INIT
  "--oslib=semihost --crt0=semihost -Wl,--gc-sections -Wl,--defsym=__flash=0x0 -Wl,--defsym=__flash_size=0x400000 -Wl,--defsym=__ram=0x20000000 -Wl,--defsym=__ram_size=0x400000")

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
